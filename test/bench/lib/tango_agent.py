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
  {"op": "ping-rtt", "url", "n"}               n pings of one DeviceProxy: wall times, and what ping() says
  {"op": "db-read", "host", "n"}               the Starter's reads of a host (DbGetHostServersInfo, the
                                               Starter device's and class's properties), n times

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


def ping_rtt(req):
    """Round trips of DeviceProxy.ping() on one proxy (its connection made by a first ping)."""
    device = tango.DeviceProxy(req["url"])
    device.set_timeout_millis(3000)
    device.ping()
    wall, own = [], []
    for _ in range(int(req.get("n", 100))):
        started = time.perf_counter()
        micros = device.ping()
        wall.append((time.perf_counter() - started) * 1000)
        own.append(micros / 1000)
    return {"ok": True, "wall": wall, "own": own}


def db_read(req):
    """What the Starter reads of its host, timed as a whole each time (one Database, connected once)."""
    db = tango.Database()
    dbdev = tango.DeviceProxy(db.dev_name())
    host = req["host"]
    device = "tango/admin/" + host.split(".")[0]
    times = []
    for _ in range(int(req.get("n", 10))):
        started = time.perf_counter()
        info = dbdev.command_inout("DbGetHostServersInfo", host)
        names = list(db.get_device_property_list(device, "*"))
        props = db.get_device_property(device, names) if names else {}
        class_names = list(db.get_class_property_list("Starter"))
        if class_names:
            db.get_class_property("Starter", class_names)
        times.append((time.perf_counter() - started) * 1000)
    return {"ok": True, "times": times, "servers": len(info) // 3, "properties": len(props)}


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
    if op == "ping-rtt":
        return ping_rtt(req)
    if op == "db-read":
        return db_read(req)
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
