"""`ctsentinel serve`: the store in a browser and over HTTP (DESIGN.md section 7).

One aiohttp server on 127.0.0.1: server-rendered pages (Jinja2, autoescaped, no inline script) and JSON
twins of each page built from the same store query, the APIs that crt.sh and Cert Spotter clients speak,
an Atom feed per watch and Prometheus metrics. Every browsing query runs off the event loop on a read-only,
time-limited connection, so one expensive search cannot stall the server.

Modules: settings (what the command hands in), app (services, middlewares, routes), views (each page and
its JSON twin), actions (login, acknowledge, resolve), compat (crt.sh and Cert Spotter), feeds (Atom),
metrics (Prometheus), security (headers, token, sessions, CSRF), params (query parameters), cursor (opaque
page cursors), errors (one-line HTTP errors), charts (inline SVG), render (the Jinja2 environment),
listening (an application served on one address, for serve and for run's metrics port).
"""
