"""`aigw dashboard`: a web page of the metrics, served by aiohttp (app.py) from static files
(static/: plain HTML, CSS and JS, with uPlot vendored for the charts), reading the numbers
through services/dashboard.py — the same query layer as `aigw metrics`."""
