#!/usr/bin/env python3
"""An OTLP/HTTP receiver that discards: answers 200 to every POST (for the tracing overhead
measurement, README "Operating it"). Usage: bench/otlp_sink.py [PORT] (default 4318); prints the
number of export requests and bytes received when stopped."""
import http.server
import signal
import sys

received = {"requests": 0, "bytes": 0}


class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        self.rfile.read(length)
        received["requests"] += 1
        received["bytes"] += length
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def stop(*_):
    raise KeyboardInterrupt


if __name__ == "__main__":
    # Background jobs ignore SIGINT: stop on SIGTERM too (`kill PID`).
    signal.signal(signal.SIGTERM, stop)
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 4318
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Sink)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        print(f"otlp_sink: {received['requests']} export requests, {received['bytes']} bytes", flush=True)
