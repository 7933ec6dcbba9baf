"""One module per command group. Commands parse, call one service, render."""
