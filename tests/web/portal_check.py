"""Visits the cbm-hub web portal in headless Chromium as the members a plan names, presenting
each member's client certificate, and checks what each page holds.

Usage: python portal_check.py PLAN.json

The plan (written by tests/web_portal_browser.rs):
  {"base": "https://localhost:PORT", "chromium": "/usr/bin/chromium",
   "shots": "DIR",
   "members": {"EE-CERT": {"cert": "PEM FILE", "key": "PEM FILE"}, ...},
   "visits": [{"member": "EE-CERT" or null, "path": "/", "status": 200,
               "contains": [...], "absent": [...], "screenshot": "NAME.png", "pdf": "NAME.pdf",
               "fails": false, "tlp_colours": false, "keyboard": false,
               "small_shot": "NAME.png"}]}

Server trust: Playwright presents client certificates through its own TLS client (Node), not
Chromium's, so Chromium's --ignore-certificate-errors-spki-list does not reach that connection
(it answered 503 for the dev CA) and the dev CA cannot be added to it: the contexts use
ignore_https_errors. These checks are about the client side (who the certificate makes the
browser, what the pages hold); the hub's server certificate is checked by the gRPC and plain
HTTPS tests, which trust the test CA explicitly.
A visit with "fails": true must get no page at all (no certificate, a revoked one).
Prints one JSON line per visit; exits 1 when any check failed.
"""
import json
import sys

from playwright.sync_api import Error, sync_playwright

# The FIRST TLP 2.0 colours, as the browser computes them.
TLP_COLOURS = {
    "tlp-red": "rgb(255, 43, 43)",
    "tlp-amber": "rgb(255, 192, 0)",
    "tlp-green": "rgb(51, 255, 0)",
    "tlp-clear": "rgb(255, 255, 255)",
}
BLACK = "rgb(0, 0, 0)"


def visit(context, plan, v, problems, console):
    page = context.new_page()
    page.on("console", lambda m: console.append(m.text))
    url = plan["base"] + v["path"]
    try:
        response = page.goto(url, wait_until="load", timeout=30000)
    except Error as e:
        if v.get("fails"):
            return {"path": v["path"], "refused": str(e).splitlines()[0]}
        problems.append(f"{v['member']} {v['path']}: no page: {e}")
        return {"path": v["path"], "error": str(e)}
    if v.get("fails"):
        # Chromium without a certificate fails the navigation itself. With a certificate,
        # Playwright's own TLS client makes the connection; when the hub refuses the handshake
        # it answers the browser with an error page of its own (503): nothing of the hub's.
        html = page.content()
        text = page.inner_text("body")[:200] if page.query_selector("body") else ""
        if not text.startswith("Playwright client-certificate error") or "cbm-hub" in html or any(s in html for s in v.get("absent", [])):
            problems.append(f"{v['member']} {v['path']}: got a page ({response.status}) where none was due")
        return {"path": v["path"], "status": response.status, "refused_by_proxy": text}
    html = page.content()
    if not v.get("status_any") and response.status != v.get("status", 200):
        problems.append(f"{v['member']} {v['path']}: status {response.status}, expected {v.get('status', 200)}")
    for s in v.get("contains", []):
        if s not in html:
            problems.append(f"{v['member']} {v['path']}: missing {s!r}")
    for s in v.get("absent", []):
        if s in html:
            problems.append(f"{v['member']} {v['path']}: holds {s!r}, outside the member's audience")
    if v.get("tlp_colours"):
        for cls, colour in TLP_COLOURS.items():
            el = page.query_selector(f".{cls}")
            if el is None:
                continue
            got = el.evaluate("e => [getComputedStyle(e).color, getComputedStyle(e).backgroundColor]")
            if got != [colour, BLACK]:
                problems.append(f"{v['member']} {v['path']}: .{cls} is {got}, TLP 2.0 wants {colour} on black")
    if v.get("screenshot"):
        page.screenshot(path=f"{plan['shots']}/{v['screenshot']}", full_page=True)
    if v.get("small_shot"):
        # A small one for the README: the top of the page at a laptop's width.
        page.set_viewport_size({"width": 1180, "height": 740})
        page.screenshot(path=f"{plan['shots']}/{v['small_shot']}")
        page.set_viewport_size({"width": 1360, "height": 900})
    if v.get("keyboard"):
        # The first Tab reaches the skip link; following it moves focus to the content.
        page.keyboard.press("Tab")
        first = page.evaluate("document.activeElement.className")
        if first != "skip":
            problems.append(f"{v['member']} {v['path']}: first Tab focuses {first!r}, not the skip link")
        unlabelled = page.evaluate(
            """[...document.querySelectorAll('input, select')].filter(e =>
                 e.type !== 'hidden' && !(e.id && document.querySelector(`label[for="${e.id}"]`))).length"""
        )
        if unlabelled:
            problems.append(f"{v['member']} {v['path']}: {unlabelled} form fields without a label")
    if v.get("pdf"):
        page.emulate_media(media="print")
        if page.is_visible("nav.main-nav"):
            problems.append(f"{v['member']} {v['path']}: the navigation is printed")
        page.pdf(path=f"{plan['shots']}/{v['pdf']}", format="A4", landscape=True)
    page.close()
    return {"path": v["path"], "status": response.status}


def main():
    plan = json.load(open(sys.argv[1]))
    problems = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=plan["chromium"],
            args=[
                "--no-sandbox",
                # Loopback only: never through a proxy the environment may name.
                "--no-proxy-server",
            ],
        )
        contexts = {}
        for v in plan["visits"]:
            member = v.get("member")
            if member not in contexts:
                certs = []
                if member is not None:
                    m = plan["members"][member]
                    certs = [{"origin": plan["base"], "certPath": m["cert"], "keyPath": m["key"]}]
                contexts[member] = browser.new_context(
                    client_certificates=certs,
                    ignore_https_errors=True,
                    viewport={"width": 1360, "height": 900},
                    locale="en-GB",
                )
            console = []
            result = visit(contexts[member], plan, v, problems, console)
            csp = [m for m in console if "Content Security Policy" in m]
            if csp and not v.get("fails"):
                problems.append(f"{member} {v['path']}: CSP violations: {csp}")
            result["member"] = member
            print(json.dumps(result), flush=True)
        browser.close()
    for problem in problems:
        print("PROBLEM: " + problem, file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
