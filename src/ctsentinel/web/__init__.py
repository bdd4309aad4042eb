"""`ctsentinel serve`: the store in a browser and over HTTP (DESIGN.md section 7).

One aiohttp server on 127.0.0.1: server-rendered pages (Jinja2, autoescaped, no inline script) and JSON
twins of each page built from the same store query, the APIs that crt.sh and Cert Spotter clients speak,
an Atom feed per watch and Prometheus metrics. Every browsing query runs off the event loop on a read-only,
time-limited connection, so one expensive search cannot stall the server.

Modules: settings (what the command hands in), app (routes and middlewares), security (headers, token,
sessions, CSRF), cursor (opaque page cursors), views (the pages and their JSON), compat (crt.sh and Cert
Spotter), feeds (Atom), metrics (Prometheus), charts (inline SVG), render (Jinja2 environment).
"""
