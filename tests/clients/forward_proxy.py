"""A plain-HTTP forward proxy, as `HTTP_PROXY` names one: each request's line carries the
absolute URL it is for, and the proxy relays it there and relays the answer back, streamed.
A GET of `/seen` on the proxy itself answers with the JSON-RPC methods of the POSTs it
relayed, one per line: what went through it.

    forward_proxy.py --http PORT
"""

import argparse
import http.client
import http.server
import json
import threading
import urllib.parse

seen = []
seen_lock = threading.Lock()

# Hop-by-hop headers a proxy does not pass on (RFC 9110, 7.6.1).
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/seen":
            with seen_lock:
                body = "\n".join(seen).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.relay()

    def do_POST(self):
        self.relay()

    def do_DELETE(self):
        self.relay()

    def relay(self):
        target = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if self.command == "POST" and body:
            try:
                method = json.loads(body).get("method", "(an answer)")
            except (ValueError, AttributeError):
                method = "(not JSON-RPC)"
            with seen_lock:
                seen.append(method)
        headers = {
            name: value
            for name, value in self.headers.items()
            if name.lower() not in HOP_BY_HOP
        }
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        path = target.path + (f"?{target.query}" if target.query else "")
        upstream.request(self.command, path, body=body, headers=headers)
        answer = upstream.getresponse()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        # Streamed back chunk by chunk: an event stream is relayed as it comes.
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        while chunk := answer.read1(65536):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        upstream.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, required=True)
    args = parser.parse_args()
    http.server.ThreadingHTTPServer(("127.0.0.1", args.http), Proxy).serve_forever()
