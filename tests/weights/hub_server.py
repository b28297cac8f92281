"""A loopback stand-in for the Hugging Face hub's `resolve` endpoint (HEAD + GET).

Sends the headers huggingface_hub reads (`get_hf_file_metadata` in huggingface_hub/file_download.py):
X-Repo-Commit (the commit), and for LFS files X-Linked-Etag (the file's sha256, quoted) and
X-Linked-Size next to an ETag of the git pointer; for plain git files ETag is the git blob sha1.
The real hub answers an LFS HEAD with a redirect to its CDN carrying these headers; here the
file is served directly (huggingface_hub reads the same headers either way).

`add` publishes a new commit of a file: `/<repo>/resolve/main/<file>` then serves it, and
`/<repo>/resolve/<commit>/<file>` keeps serving it after later commits. `truncate[path] = n`
sends only n bytes of a body whose Content-Length announces the full size; unknown paths get 404
with the hub's error header. Records requests so tests can prove what a call fetched.
"""
import hashlib
import http.server
import itertools
import threading

FILENAME = "model.safetensors"


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubServer:
    def __init__(self):
        self.files, self.truncate, self.requests = {}, {}, []
        self._commits = itertools.count()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _serve(self, with_body):
                server.requests.append((self.command, self.path))
                entry = server.files.get(self.path)
                if entry is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data, headers = entry
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
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

    @staticmethod
    def path(hf_hub_id, revision="main", filename=FILENAME):
        return f"/{hf_hub_id}/resolve/{revision}/{filename}"

    def add(self, hf_hub_id, data, filename=FILENAME, lfs=True, sha256=None):
        """Publishes `data` as a new commit of the file; returns the commit hash.

        sha256: the hash to announce in X-Linked-Etag instead of the true one (a file that the
        hub's metadata does not describe, as a broken mirror or a tampering proxy would serve)."""
        commit = hashlib.sha1(f"{hf_hub_id}/{filename}@{next(self._commits)}".encode()).hexdigest()
        headers = {"X-Repo-Commit": commit}
        if lfs:
            pointer = (f"version https://git-lfs.github.com/spec/v1\noid sha256:"
                       f"{hashlib.sha256(data).hexdigest()}\nsize {len(data)}\n").encode()
            headers.update({"ETag": f'"{git_blob_sha1(pointer)}"', "X-Linked-Size": str(len(data)),
                            "X-Linked-Etag": f'"{sha256 or hashlib.sha256(data).hexdigest()}"'})
        else:
            headers["ETag"] = f'"{git_blob_sha1(data)}"'
        for revision in ("main", commit):
            self.files[self.path(hf_hub_id, revision, filename)] = (data, headers)
        return commit

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
