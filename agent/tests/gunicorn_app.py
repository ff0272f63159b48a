"""A WSGI app served by real gunicorn in agent/tests/it/gunicorn.rs: `/missing` answers 404,
`/boom` raises (gunicorn answers 500 and logs the exception), anything else answers 200."""


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/boom":
        raise RuntimeError("boom")
    if path == "/missing":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"missing\n"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok\n"]
