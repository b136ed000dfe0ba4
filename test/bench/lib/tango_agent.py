"""A Tango client for the benchmark, as Jive / Astor / a control room would talk to Tango.

Started once (importing PyTango takes ~0.3 s, outside anything measured) and then driven over stdin
with one JSON request per line; answers one JSON line per request, in order:

  {"id": 1, "op": "ping", "url": "tango://127.0.0.1:31001/dserver/TangoTest/b01#dbase=no"}
      -> {"id": 1, "ok": true, "t": <epoch ms when the ping answered>, "attempts": n}
  {"op": "command", "device": "tango/admin/host", "command": "DevStartAll", "arg": 1}
  {"op": "read", "device": ..., "attribute": "Servers"}
  {"op": "db-check"}                            the database device's name (TANGO_HOST)
  {"op": "db-register", "servers": [{"name", "class", "devices", "host", "mode", "level"}]}
  {"op": "db-delete", "servers": ["Server/inst", ...]}
  {"op": "db-properties", "device", "properties": {name: [values]}}

Pings are sent only to servers that announced readiness: TangoTest 9.3 segfaults when a request
arrives while it is still exporting its device.
"""

import json
import os
import sys
import time

import tango

# The database actions are the ones the integration tests use (Jive's and Astor's calls).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "tango-db"))
import tango_db  # noqa: E402

proxies = {}


def proxy(name):
    if name not in proxies:
        proxies[name] = tango.DeviceProxy(name)
    return proxies[name]


def describe(error):
    text = str(error)
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("desc ="):
            return line[len("desc ="):].strip()
    return text.splitlines()[0] if text else type(error).__name__


def ping(req):
    tries = int(req.get("tries", 30))
    timeout = int(req.get("timeoutMs", 1500))
    last = None
    for attempt in range(1, tries + 1):
        try:
            device = tango.DeviceProxy(req["url"])
            device.set_timeout_millis(timeout)
            device.ping()
            return {"ok": True, "t": time.time() * 1000, "attempts": attempt}
        except Exception as error:  # noqa: BLE001 - any failure is retried
            last = describe(error)
            time.sleep(0.01)
    return {"ok": False, "error": last, "attempts": tries}


def command(req):
    device = proxy(req["device"])
    device.set_timeout_millis(int(req.get("timeoutMs", 10000)))
    if "arg" in req and req["arg"] is not None:
        value = device.command_inout(req["command"], req["arg"])
    else:
        value = device.command_inout(req["command"])
    if value is not None and not isinstance(value, (str, int, float, bool)):
        value = list(value)
    return {"ok": True, "value": value}


def read(req):
    device = proxy(req["device"])
    device.set_timeout_millis(int(req.get("timeoutMs", 3000)))
    value = device.read_attribute(req["attribute"]).value
    if value is not None and not isinstance(value, (str, int, float, bool)):
        value = list(value)
    return {"ok": True, "value": value, "t": time.time() * 1000}


DATABASE_ACTIONS = {
    "db-register": tango_db.register,
    "db-delete": tango_db.delete,
    "db-properties": tango_db.properties,
}


def handle(req):
    op = req["op"]
    if op == "ping":
        return ping(req)
    if op == "command":
        return command(req)
    if op == "read":
        return read(req)
    if op == "db-check":
        db = tango.Database()
        return {"ok": True, "name": db.dev_name(), "servers": len(db.get_server_list("*"))}
    if op in DATABASE_ACTIONS:
        return {"ok": True, **DATABASE_ACTIONS[op](req)}
    return {"ok": False, "error": "unknown op %s" % op}


def main():
    print(json.dumps({"id": None, "ok": True, "ready": True}), flush=True)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        try:
            answer = handle(req)
        except Exception as error:  # noqa: BLE001 - reported to the bench
            answer = {"ok": False, "error": describe(error)}
        answer["id"] = req.get("id")
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
