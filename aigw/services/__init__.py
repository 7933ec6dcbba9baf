"""Use cases: no Typer, no Rich, no printing. They raise AigwError and return data."""
