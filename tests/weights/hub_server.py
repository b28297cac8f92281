"""A loopback stand-in for the Hugging Face hub's `resolve` endpoint (HEAD + GET).

Serves `files[path] = bytes`; `truncate[path] = n` sends only n bytes of a body whose
Content-Length announces the full size; unknown paths get 404 with the hub's error header.
Counts requests so tests can prove a cached call makes none.
"""
import hashlib
import http.server
import threading


class HubServer:
    def __init__(self):
        self.files, self.truncate, self.requests = {}, {}, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _serve(self, with_body):
                server.requests.append((self.command, self.path))
                data = server.files.get(self.path)
                if data is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("ETag", '"%s"' % hashlib.sha256(data).hexdigest())
                self.send_header("X-Repo-Commit", hashlib.sha1(data).hexdigest())
                self.end_headers()
                if with_body:
                    n = server.truncate.get(self.path, len(data))
                    self.wfile.write(data[:n])
                    if n < len(data):
                        self.wfile.flush()
                        self.close_connection = True

            def do_HEAD(self):
                self._serve(False)

            def do_GET(self):
                self._serve(True)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.httpd.server_port}"

    def add(self, hf_hub_id, data, filename="model.safetensors"):
        path = f"/{hf_hub_id}/resolve/main/{filename}"
        self.files[path] = data
        return path

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
