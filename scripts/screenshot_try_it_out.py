"""Screenshot of Swagger UI's "Try it out" on GET /api/v1/synergies (issue 12), through chromedriver's
W3C WebDriver protocol (standard library only; no selenium).

    python3 scripts/screenshot_try_it_out.py http://127.0.0.1:8080 docs/openapi_try_it_out.png

Needs a server with keyless reads (`symbiose serve --demo`), /usr/bin/chromium and
/usr/bin/chromedriver. Opens /docs, expands the operation, presses "Try it out", fills
`territory=21`, `kind=substitution`, `limit=2`, presses "Execute", waits for the live response and
saves the operation block as a PNG; exits non-zero unless the response shown is a 200.
"""

import base64
import json
import socket
import subprocess
import sys
import time
import urllib.request

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Driver:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1400,1900", "--lang=fr-FR"],
            },
        }}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.load(r)["value"]

    def s(self, method, path, body=None):
        return self.call(method, f"/session/{self.session}{path}", body)

    def find(self, css, timeout=30):
        deadline = time.time() + timeout
        while True:
            found = self.s("POST", "/elements", {"using": "css selector", "value": css})
            if found:
                return found[0][ELEMENT]
            if time.time() > deadline:
                sys.exit(f"not found: {css}")
            time.sleep(0.3)

    def js(self, script, *args):
        return self.s("POST", "/execute/sync", {"script": script, "args": list(args)})


def main():
    base_url, out = sys.argv[1], sys.argv[2]
    port = free_port()
    driver_process = subprocess.Popen(["/usr/bin/chromedriver", f"--port={port}"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        d = Driver(port)
        try:
            d.s("POST", "/url", {"url": base_url + "/docs/"})
            op = d.find('[id$="list_synergies"]')
            d.js("arguments[0].scrollIntoView(true)", {ELEMENT: op})
            summary = d.find('[id$="list_synergies"] .opblock-summary-control')
            d.s("POST", f"/element/{summary}/click", {})
            try_out = d.find('[id$="list_synergies"] .try-out__btn')
            d.s("POST", f"/element/{try_out}/click", {})
            for name, value in [("territory", "21"), ("kind", "substitution"), ("limit", "2")]:
                row = f'[id$="list_synergies"] tr[data-param-name="{name}"]'
                field = d.find(f"{row} input, {row} select")
                tag = d.s("GET", f"/element/{field}/name")
                if tag == "select":
                    d.js("arguments[0].value = arguments[1];"
                         "arguments[0].dispatchEvent(new Event('change', {bubbles: true}))",
                         {ELEMENT: field}, value)
                else:
                    d.s("POST", f"/element/{field}/value", {"text": value})
            execute = d.find('[id$="list_synergies"] .execute')
            d.s("POST", f"/element/{execute}/click", {})
            status_cell = d.find('[id$="list_synergies"] .live-responses-table tbody .response-col_status')
            status = d.s("GET", f"/element/{status_cell}/text").strip()
            time.sleep(1)
            block = d.find('[id$="list_synergies"]')
            d.js("arguments[0].scrollIntoView(true)", {ELEMENT: block})
            png = d.s("GET", f"/element/{block}/screenshot")
            with open(out, "wb") as f:
                f.write(base64.b64decode(png))
            print(f"live response status: {status}; saved {out}")
            if not status.startswith("200"):
                sys.exit(1)
        finally:
            d.s("DELETE", "")
    finally:
        driver_process.terminate()
        driver_process.wait(timeout=10)


if __name__ == "__main__":
    main()
