"""Benchmarks that print figures and ratios; run each from the repository root as a module,
`python -m bench.<name>`."""


def compile_aigw() -> None:
    """Write aigw's bytecode, as installing a package does. An editable install leaves that to
    the first run, and where PYTHONDONTWRITEBYTECODE is set (this machine's environment sets
    it) no run ever writes it: every timed `aigw` would compile its modules again, a cost no
    installed aigw pays and the other side of each comparison (installed packages) never does.
    """
    import compileall
    from pathlib import Path

    import aigw

    compileall.compile_dir(Path(aigw.__file__).parent, quiet=1)
