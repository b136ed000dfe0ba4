#!/usr/bin/python3
"""starter-init's Tango device of class Starter.

    STARTER_CONTROL_SOCKET=/run/starter-init.sock TANGO_HOST=db:10000 python3 starter_device.py HOST

The server Starter/HOST serves the device <Domain>/admin/HOST (the Starter class property Domain,
"tango" by default), with the commands and attributes of the Tango Starter (7.x, as Debian ships it)
that Astor and scripts use. It is a thin adapter to the init's control socket: it subscribes to the
init's changes (the `watch` command) and turns each into Tango change events at once; its commands
become the init's requests (start, stop, kill, start-all, stop-all, refresh-sources, logs). It decides
nothing about processes: starting, stopping, restarting and the order of levels are the init's.

What it keeps itself, as the Starter does: the Starter's words for the host (dev_state's rules), the
Starter log (<LogFileHome>/ds.log/Starter.log: what was started and stopped) and the statistics file
(Starter.stat: when controlled servers came up and failed).

The init runs it when the config says `sources.tango.device: true` (config/starter-device.ts). It
registers itself in the database when Starter/HOST is not there yet (Astor finds hosts by the class
Starter), and waits for the database at start, as the Starter does.
"""

import json
import os
import queue
import signal
import socket
import sys
import threading
import time

import tango
from tango import DevState, DispLevel
from tango.server import Device, attribute, command, run

PROTOCOL = 1
# A Starter leaves these classes off its list (StarterUtil::build_server_ctrl_object).
NOT_LISTED = ("starter", "databaseds", "tangoaccesscontrol", "logconsumer")
# Lines kept in Starter.log and Starter.stat (STARTER_LOG_DEPTH, STARTER_STAT_DEPTH).
LOG_DEPTH = 400
STAT_DEPTH = 2000
# The longest a command waits for the init: clients give up on a command after 3 s.
ANSWER_TIMEOUT = 2.5
# How long the device connects again after the init closed it for a reexec (it is back within moments).
REEXEC_RETRY_S = 30.0

STATUS_TEXT = {
    "moving": "At least one of the  controlled servers is running but not responding",
    "standby": "At least one of the  controlled servers is running but not responding since a while",
    "on": "All controlled servers are running",
    "twice": "At least one server is running twice",
    "off": "All controlled servers are not running",
    "alarm": "At least one of the  controlled servers is not running",
}


# Tango handles these in a thread of its own (a clean shutdown, exit 0); a thread started before the
# server was set up would otherwise take them with the default action and end the process.
TANGO_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP}


def say(message):
    print("Starter: %s" % message, flush=True)


def fail(reason, desc, origin):
    tango.Except.throw_exception(reason, desc, origin)


def strtime(seconds):
    """The Starter's date format: dd/mm/yy   hh:mm:ss."""
    return time.strftime("%d/%m/%y   %H:%M:%S", time.localtime(seconds))


def listed(name):
    """Whether a Starter would show a server: a Tango server (Server/instance) of a class it controls."""
    server, slash, instance = name.partition("/")
    return bool(slash and instance) and server.lower() not in NOT_LISTED


# ---- the control socket ---------------------------------------------------------------------


class ControlError(Exception):
    def __init__(self, code, message):
        Exception.__init__(self, message)
        self.code = code
        self.message = message


class ControlClient:
    """One connection to the init: requests answered by id; the watch's events go to on_event.

    The reader thread never blocks on anything but the socket: an answer wakes its waiter, an event
    is handed over (queued) and the reader goes on.
    """

    def __init__(self, path, on_event, on_lost, on_reconnect=None):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.on_event = on_event
        self.on_lost = on_lost
        # Called (in the reader thread, a new reader running) once connected again after a reexec.
        self.on_reconnect = on_reconnect
        # The init said it closes the connection because it re-executes itself ("closing").
        self.closing = False
        self.write_lock = threading.Lock()
        self.pending_lock = threading.Lock()
        self.pending = {}
        self.next_id = 0
        self.lost = False
        threading.Thread(target=self._read, name="control-reader", daemon=True).start()

    def send(self, cmd, args=None):
        with self.pending_lock:
            if self.lost:
                raise ControlError("gone", "the connection to starter-init is lost")
            self.next_id += 1
            request_id = self.next_id
            slot = {"done": threading.Event(), "reply": None}
            self.pending[request_id] = slot
        line = json.dumps({"v": PROTOCOL, "id": request_id, "cmd": cmd, "args": args or {}}) + "\n"
        with self.write_lock:
            self.sock.sendall(line.encode("utf-8"))
        return request_id, slot

    def request(self, cmd, args=None, timeout=ANSWER_TIMEOUT):
        request_id, slot = self.send(cmd, args)
        if not slot["done"].wait(timeout):
            with self.pending_lock:
                self.pending.pop(request_id, None)
            raise ControlError("timeout", "starter-init did not answer %s within %g s" % (cmd, timeout))
        reply = slot["reply"]
        if reply is None:
            raise ControlError("gone", "the connection to starter-init is lost")
        if not reply.get("ok"):
            error = reply.get("error") or {}
            raise ControlError(error.get("code", "internal"), error.get("message", "refused"))
        return reply.get("result")

    def _read(self):
        signal.pthread_sigmask(signal.SIG_BLOCK, TANGO_SIGNALS)
        buffered = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                buffered += chunk
                while b"\n" in buffered:
                    line, buffered = buffered.split(b"\n", 1)
                    if line.strip():
                        self._dispatch(json.loads(line.decode("utf-8")))
        except (OSError, ValueError) as error:
            say("control connection: %s" % error)
        if self.closing and self.on_reconnect is not None and self._reconnect():
            return
        with self.pending_lock:
            self.lost = True
            slots = list(self.pending.values())
            self.pending.clear()
        for slot in slots:
            slot["done"].set()
        self.on_lost()

    def _reconnect(self):
        """The init re-executes itself: requests in flight fail, then connect again and subscribe again."""
        try:
            self.sock.close()
        except OSError:
            pass
        with self.pending_lock:
            slots = list(self.pending.values())
            self.pending.clear()
        for slot in slots:
            slot["done"].set()
        deadline = time.time() + REEXEC_RETRY_S
        while time.time() < deadline:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.path)
            except OSError:
                sock.close()
                time.sleep(0.1)
                continue
            self.sock = sock
            self.closing = False
            threading.Thread(target=self._read, name="control-reader", daemon=True).start()
            try:
                self.on_reconnect()
            except ControlError as error:
                say("subscribing again after the init's reexec failed: %s" % error)
                return False
            say("connected again to starter-init after its reexec")
            return True
        return False

    def _dispatch(self, message):
        if message.get("id") is None and not message.get("ok", True) and (message.get("error") or {}).get("code") == "closing":
            self.closing = True
            return
        if "event" in message:
            self.on_event(message["event"], message.get("data"))
            return
        with self.pending_lock:
            slot = self.pending.pop(message.get("id"), None)
        if slot is not None:
            slot["reply"] = message
            slot["done"].set()


# ---- what the Starter knows of a server -----------------------------------------------------


class Entry:
    """One server on the Starter's list: the init's status of it, and what the database says."""

    def __init__(self, name):
        self.name = name
        self.status = None  # the init's ServerStatus; None: the init does not run it (a database entry it left out)
        self.db = None  # (controlled, level) from the database, when the server is one of its
        self.state = "FAULT"
        self.moving_since = 0.0
        self.started_time = int(time.time())
        self.failure_time = -1
        self.auto_start = False
        # HardKillServer: its end counts as a failure, as with the Starter (only DevStop is an operator's stop).
        self.hard_killed = False

    @property
    def controlled(self):
        if self.db is not None:
            return self.db[0]
        return bool(self.status and self.status.get("autostart") and self.status.get("level", 0) >= 1)

    @property
    def level(self):
        if self.db is not None:
            return self.db[1]
        return int(self.status.get("level", 0)) if self.status else 0

    @property
    def instances(self):
        return 1 if self.status and self.status.get("pid") is not None else 0

    @property
    def starting(self):
        return bool(self.status and self.status.get("state") == "starting")

    def line(self):
        return "%s\t%s\t%d\t%d\t%d" % (self.name, self.state, 1 if self.controlled else 0, self.level, self.instances)


def db_entry(server):
    """(controlled, level) of a server of the source's report."""
    controlled = server.get("controlled")
    if controlled is None:
        controlled = str(server.get("mode", "")).strip() == "1"
    try:
        level = int(str(server.get("level", "")).strip())
    except ValueError:
        level = 0
    return bool(controlled), level


# ---- the device -----------------------------------------------------------------------------


class Starter(Device):
    """This device server is able to control <b>Tango</b> components (database, device servers, clients...).
    It is able to start or stop and to report the status of these components."""

    control = None  # the ControlClient, connected before the server runs
    snapshot = None  # the watch's first answer
    events = queue.Queue()

    # -- life cycle --

    def init_device(self):
        Device.init_device(self)
        self._lock = threading.RLock()
        self._read_properties()
        if getattr(self, "_entries", None) is None:
            self._entries = []
            self._by_key = {}
            self._report_warnings = []
            self._state = DevState.ON
            self._status = "The device is in ON state."
            self._published = {}
            self._apply_snapshot(Starter.snapshot)
            for name in ("State", "Status", "HostState", "Servers", "RunningServers", "StoppedServers", "NotifdState"):
                self.set_change_event(name, True, False)
            self._log_info("Starter startup")
            threading.Thread(target=self._push_loop, name="pusher", daemon=True).start()
        self._update(push=False)

    def delete_device(self):
        if tango.Util.instance().is_svr_shutting_down():
            self._log_info("Starter shutdown")

    def _read_properties(self):
        db = tango.Util.instance().get_database()
        names = ["LogFileHome", "MovingMaxDuration", "StartDsPath", "ReadInfoDbPeriod"]
        device = db.get_device_property(self.get_name(), names)
        klass = db.get_class_property("Starter", names)

        def value(name, default):
            values = list(device.get(name) or []) or list(klass.get(name) or [])
            return values if values else default

        self.log_home = value("LogFileHome", ["/var/tmp"])[0]
        self.moving_max = float(value("MovingMaxDuration", ["120"])[0])
        self.start_ds_path = value("StartDsPath", ["."])
        self.read_info_period = float(value("ReadInfoDbPeriod", ["4"])[0])
        fire = db.get_property("Default", ["FireToStarter"]).get("FireToStarter") or []
        # DataBaseds calls UpdateServersInfo unless Default/FireToStarter is false; then the Starter reads itself.
        self.fired_by_database = not (fire and str(fire[0]).strip().lower() == "false")
        self.log_dir = os.path.join(self.log_home, "ds.log")
        self.log_file = os.path.join(self.log_dir, "Starter.log")
        self.stat_file = os.path.join(self.log_dir, "Starter.stat")

    # -- the model: applied from the init's events, under the lock --

    def _entry(self, name, create=True):
        entry = self._by_key.get(name.lower())
        if entry is None and create:
            entry = Entry(name)
            self._entries.append(entry)
            self._by_key[name.lower()] = entry
        return entry

    def _apply_snapshot(self, snapshot):
        for status in snapshot.get("servers") or []:
            self._apply_status(status, quiet=True)
        self._apply_sources(snapshot.get("sources") or [])

    def _apply_sources(self, sources):
        report = (sources[0].get("report") if sources else None) or {}
        self._report_warnings = list(report.get("warnings") or [])
        in_report = set()
        for server in report.get("servers") or []:
            name = server.get("name")
            if not name:
                continue
            in_report.add(name.lower())
            self._entry(name).db = db_entry(server)
        for entry in list(self._entries):
            if entry.db is not None and entry.name.lower() not in in_report:
                entry.db = None
                if entry.status is None:
                    self._remove(entry)

    def _remove(self, entry):
        self._entries.remove(entry)
        self._by_key.pop(entry.name.lower(), None)

    def _apply_status(self, status, quiet=False):
        entry = self._entry(status["name"])
        entry.status = status
        before, after = entry.state, status.get("starter", "FAULT")
        if status.get("state") == "starting" and status.get("reason") == "auto-restart":
            entry.auto_start = True
        if before == after:
            return
        entry.state = after
        now = time.time()
        if after == "MOVING":
            entry.moving_since = now
        if quiet:
            return
        if not listed(entry.name):
            return
        if after == "ON":
            entry.started_time = int(now)
            self._log_info("%s started" % entry.name)
            if entry.controlled and entry.level > 0:
                self._log_statistics(entry)
            entry.failure_time = -1
        elif after == "FAULT":
            # Down while wanted up, or hard-killed: a failure (a server stopped on request is not one).
            failed = status.get("desired") == "up" or entry.hard_killed
            entry.hard_killed = False
            if failed and entry.controlled and entry.level > 0:
                entry.failure_time = int(now)
                self._log_statistics(entry)

    def _apply_event(self, name, data):
        if name == "servers":
            for status in data.get("changed") or []:
                self._apply_status(status)
            for removed in data.get("removed") or []:
                entry = self._entry(removed, create=False)
                if entry is None:
                    continue
                entry.status = None
                entry.state = "FAULT"
                if entry.db is None:
                    self._remove(entry)
        elif name == "sources":
            self._apply_sources(data or [])

    # -- what the Starter shows, computed from the model --

    def _listed(self):
        return [entry for entry in self._entries if listed(entry.name)]

    def _host_state(self):
        """Starter::dev_state: the host's state and status from the controlled servers."""
        entries = self._listed()
        if not entries:
            return DevState.ON, "The device is in ON state."
        now = time.time()
        running = controlled = moving = long_moving = stopped = twice = 0
        for entry in entries:
            if not entry.controlled:
                continue
            controlled += 1
            if entry.state == "ON":
                if entry.instances > 1:
                    twice += 1
                else:
                    running += 1
            elif entry.state == "MOVING":
                if now - entry.moving_since > self.moving_max:
                    long_moving += 1
                else:
                    moving += 1
            else:
                stopped += 1
        # A start under way makes the host MOVING, as the Starter's start thread does.
        if moving > 0 or any(entry.starting for entry in self._entries):
            return DevState.MOVING, STATUS_TEXT["moving"]
        if long_moving > 0:
            return DevState.STANDBY, STATUS_TEXT["standby"]
        if running == controlled:
            return (DevState.ALARM, STATUS_TEXT["twice"]) if twice else (DevState.ON, STATUS_TEXT["on"])
        if stopped == controlled:
            return DevState.OFF, STATUS_TEXT["off"]
        return DevState.ALARM, STATUS_TEXT["alarm"]

    def _values(self):
        entries = self._listed()
        return {
            "Servers": [entry.line() for entry in entries],
            "RunningServers": [entry.name for entry in entries if entry.state == "ON"],
            "StoppedServers": [entry.name for entry in entries if entry.state != "ON"],
        }

    def _update(self, push=True):
        """Recomputes what the Starter shows and pushes a change event for each value that changed."""
        with self._lock:
            state, status = self._host_state()
            values = self._values()
        self._state, self._status = state, status
        self.set_state(state)
        self.set_status(status)
        values["State"] = state
        values["HostState"] = int(state)
        for name, value in values.items():
            if self._published.get(name) == value:
                continue
            self._published[name] = value
            if not push:
                continue
            if name == "State":
                self.push_change_event("State", state)
                self.push_change_event("Status", status)
            else:
                self.push_change_event(name, value)

    def _push_loop(self):
        """Applies the init's events as they come and pushes the Tango events at once; ticks each second for
        what time alone changes (a server MOVING longer than MovingMaxDuration makes the host STANDBY)."""
        signal.pthread_sigmask(signal.SIG_BLOCK, TANGO_SIGNALS)
        with tango.EnsureOmniThread():
            last_read = time.time()
            while True:
                try:
                    item = Starter.events.get(timeout=1.0)
                except queue.Empty:
                    item = None
                try:
                    with tango.AutoTangoMonitor(self):
                        if item is not None:
                            with self._lock:
                                self._apply_event(*item)
                                while True:
                                    try:
                                        self._apply_event(*Starter.events.get_nowait())
                                    except queue.Empty:
                                        break
                        self._update()
                except Exception as error:  # noqa: BLE001 - one bad event must not end the device
                    say("applying an event of starter-init failed: %r" % error)
                if not self.fired_by_database and time.time() - last_read >= self.read_info_period:
                    last_read = time.time()
                    self._refresh(wait=False)

    # -- files of the Starter --

    def _prepend(self, path, line, depth):
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            try:
                with open(path, encoding="utf-8", errors="replace") as old:
                    rest = old.readlines()[: depth - 1]
            except FileNotFoundError:
                rest = []
            with open(path, "w", encoding="utf-8") as new:
                new.write(line + "\n")
                new.writelines(rest)
        except OSError as error:
            say("cannot write %s: %s" % (path, error.strerror))

    def _log_info(self, message):
        self._prepend(self.log_file, "%s\t%s" % (strtime(time.time()), message), LOG_DEPTH)

    def _stat_line(self, entry, failure_time):
        state = "ON" if entry.state == "ON" else "FAULT"
        return "%s\t%s\t%d\t%d\t%s" % (entry.name, state, entry.started_time, failure_time, "true" if entry.auto_start else "false")

    def _log_statistics(self, entry):
        self._prepend(self.stat_file, self._stat_line(entry, entry.failure_time), STAT_DEPTH)
        entry.auto_start = False

    # -- talking to the init --

    def _ask(self, cmd, args, origin, timeout=ANSWER_TIMEOUT):
        try:
            return Starter.control.request(cmd, args, timeout)
        except ControlError as error:
            fail("STARTER_INIT_%s" % error.code.upper().replace("-", "_"), "starter-init: %s" % error.message, origin)
        except OSError as error:
            fail("STARTER_INIT_GONE", "starter-init: %s" % error, origin)

    def _refresh(self, wait):
        """Asks the init to read the database again; servers it finds are known, not started."""
        if not wait:
            try:
                Starter.control.send("refresh-sources", {"startAdded": False})
            except (ControlError, OSError) as error:
                say("refresh-sources: %s" % error)
            return None
        return self._ask("refresh-sources", {"startAdded": False}, "Starter::dev_start()")

    def _find(self, name):
        with self._lock:
            return self._entry(name, create=False)

    def _not_found_in_path(self, binary):
        return "%s :  not found in 'StartDsPath' property:\n%s" % (binary, "".join(" - %s\n" % d for d in self.start_ds_path))

    def _binary_missing(self, name):
        """Whether the init found no binary for a server of the database (its report says so)."""
        prefix = name.lower() + ":"
        return any(w.lower().startswith(prefix) and "not found" in w for w in self._report_warnings)

    # -- commands --

    def dev_state(self):
        return self._state

    def dev_status(self):
        return self._status

    @command(dtype_in=str, doc_in="Server to be started.")
    def DevStart(self, argin):
        entry = self._find(argin)
        if entry is not None and entry.state != "FAULT":
            fail("ALREADY_RUNNING", "%s is already running !" % argin, "Starter::dev_start()")
        if entry is None or entry.status is None:
            # Not known to the init yet (Astor's "Start New" registers the server, then starts it).
            result = self._refresh(wait=True) or {}
            known = {name.lower(): name for key in ("added", "changed", "unchanged") for name in result.get(key) or []}
            if argin.lower() not in known:
                binary = argin.split("/", 1)[0]
                if not any(os.path.exists(os.path.join(d, binary)) for d in self.start_ds_path):
                    fail("CANNOT_RUN_FILE", self._not_found_in_path(binary), "StarterUtil::check_exe_file()")
                fail("UNKNOWN_SERVER", "%s is not registered in the database for this host" % argin, "Starter::dev_start()")
            name = known[argin.lower()]
        else:
            name = entry.status["name"]
            if self._binary_missing(name):
                fail("CANNOT_RUN_FILE", self._not_found_in_path(argin.split("/", 1)[0]), "StarterUtil::check_exe_file()")
        result = self._ask("start", {"servers": [name], "wait": False}, "Starter::dev_start()")
        outcome = (result.get("outcomes") or [{}])[0]
        if not outcome.get("ok", True):
            fail("START_PROCASS_FAILDE", "Starting process failed:   %s" % outcome.get("message", "refused"), "Starter::dev_start()")

    @command(dtype_in=str, doc_in="Servero be stopped.")
    def DevStop(self, argin):
        with self._lock:
            empty = not self._listed()
        if empty:
            text = "%s: Server  not controlled !" % argin
            fail(text, text, "Starter::dev_stop()")
        entry = self._find(argin)
        if entry is None:
            text = "%s: Unknown Server !" % argin
            fail(text, text, "Starter::dev_stop()")
        if entry.state == "MOVING":
            fail("SERVER_NOT_RESPONDING", "%s is running but not responding !" % argin, "Starter::dev_stop()")
        if entry.state != "ON":
            fail("SERVER_NOT_RUNNING", "%s is NOT running !" % argin, "Starter::dev_stop()")
        self._stop([entry], "stop", "Starter::dev_stop()")

    def _stop(self, entries, cmd, origin):
        result = self._ask(cmd, {"servers": [e.status["name"] for e in entries], "wait": False}, origin)
        refused = [o for o in result.get("outcomes") or [] if not o.get("ok", True)]
        for entry in entries:
            # The Starter logs the servers it stops: those that ran (not those still starting).
            if entry.state == "ON" and all(o.get("name") != entry.status["name"] for o in refused):
                say("%s stopped" % entry.name)
                self._log_info("%s stopped" % entry.name)
        if refused:
            fail("STOP_FAILED", "; ".join("%s: %s" % (o.get("name"), o.get("message")) for o in refused), origin)

    @command(dtype_in=tango.DevShort, doc_in="Startup level.")
    def DevStartAll(self, argin):
        level = int(argin)
        with self._lock:
            entries = self._listed()
            busy = any(e.controlled and e.level == level and e.starting for e in entries)
            targets = [e.status["name"] for e in entries if e.controlled and e.level == level and e.state == "FAULT" and e.status is not None]
        if busy:
            fail("LevelAlreadyStarting", "Level %d is already starting\n" % level, "Starter::dev_start_all()")
        if not entries:
            fail("NO Server  controlled !", "NO Server  controlled !", "Starter::dev_start_all()")
        if targets:
            # One launch run in the init: back-to-back calls for successive levels keep the level order.
            self._ask("start-all", {"servers": targets, "wait": False}, "Starter::dev_start_all()")

    @command(dtype_in=tango.DevShort, doc_in="Startup Level.")
    def DevStopAll(self, argin):
        level = int(argin)
        with self._lock:
            entries = self._listed()
            # Running servers of the level, and those still starting (the Starter drops the level from its start thread).
            targets = [e for e in entries if e.controlled and e.level == level and e.status is not None and (e.state == "ON" or e.starting)]
        if not entries:
            fail("NO Server  controlled !", "NO Server  controlled !", "Starter::dev_stop_all()")
        if targets:
            self._stop(targets, "stop-all", "Starter::dev_stop_all()")

    @command(
        dtype_in=bool,
        doc_in="True for all servers. False for controlled servers only.",
        dtype_out=(str,),
        doc_out="List of the processes which are running.",
    )
    def DevGetRunningServers(self, argin):
        with self._lock:
            return [e.name for e in self._listed() if (argin or e.controlled) and e.state == "ON"]

    @command(
        dtype_in=bool,
        doc_in="True for all servers. False for controlled servers only.",
        dtype_out=(str,),
        doc_out="List of the processes which are not running.",
    )
    def DevGetStopServers(self, argin):
        with self._lock:
            return [e.name for e in self._listed() if (argin or e.controlled) and e.state != "ON"]

    @command(
        dtype_in=str,
        doc_in="server name and domain (e.g. Starter/corvus)\nIf argin ==``Starter``     -> return Starter logg file content.\n"
        "If argin ==``Statistics``  -> return Starter statistics file content.",
        dtype_out=str,
        doc_out="String found in log file.",
    )
    def DevReadLog(self, argin):
        if argin in ("Starter", "Statistics"):
            return self._read_file(self.log_file if argin == "Starter" else self.stat_file, header=False)
        entry = self._find(argin)
        log_file = entry.status.get("logFile") if entry is not None and entry.status else None
        if entry is not None and entry.status and log_file is None:
            # No log file: the lines the init keeps in memory.
            result = self._ask("logs", {"server": entry.status["name"], "lines": 100000}, "Starter::dev_read_log")
            lines = result.get("lines") or []
            return "%s (no log file: the last lines starter-init keeps)\n%s\n\n%s" % (argin, strtime(time.time()), "".join(l + "\n" for l in lines))
        if log_file is None:
            server, _, instance = argin.partition("/")
            log_file = os.path.join(self.log_dir, "%s_%s.log" % (server, instance))
        return self._read_file(log_file, header=True)

    def _read_file(self, path, header):
        try:
            with open(path, encoding="utf-8", errors="replace") as log:
                text = log.read()
            mtime = os.stat(path).st_mtime
        except OSError as error:
            fail("Cannot open %s" % path, error.strerror or str(error), "Starter::dev_read_log")
        return "%s\n%s\n\n%s" % (path, strtime(mtime), text) if header else text

    @command(dtype_in=str, doc_in="Server name")
    def HardKillServer(self, argin):
        entry = self._find(argin)
        if entry is None or entry.status is None or entry.status.get("pid") is None:
            fail("SERVER_NOT_RUNNING", "Server %s is not running !" % argin, "Starter::hard_kill_server()")
        with self._lock:
            entry.hard_killed = True
        self._ask("kill", {"servers": [entry.status["name"]], "wait": False}, "Starter::hard_kill_server()")

    @command(dtype_out=tango.CmdArgType.DevState, doc_out="Tango::ON if Notify daemon is running else Tango::FAULT.")
    def NotifyDaemonState(self):
        # No notify daemon in Tango 9 (UseEvents is off, as the Starter's default).
        fail("NOTIFY_NOT_AVAILABLE", "Notify Daemon control is disabled", "Starter::notify_daemon_state()")

    @command(display_level=DispLevel.EXPERT)
    def ResetStatistics(self):
        with self._lock:
            now = int(time.time())
            lines = [
                self._stat_line(e, e.failure_time if e.failure_time >= 0 else now).replace("\ttrue", "\tfalse")
                for e in self._listed()
                if e.controlled and e.level > 0
            ]
        try:
            os.makedirs(self.log_dir, exist_ok=True)
            with open(self.stat_file, "w", encoding="utf-8") as stat:
                stat.writelines(line + "\n" for line in lines)
        except OSError as error:
            fail("CANNOT_WRITE_FILE", "%s: %s" % (self.stat_file, error.strerror), "Starter::reset_statistics()")

    @command
    def UpdateServersInfo(self):
        # The database says the servers of this host changed: the init reads it again; new servers wait for DevStart.
        self._refresh(wait=False)

    # -- attributes --

    @attribute(dtype=tango.CmdArgType.DevState, label="Notifd State", description="return ON or FAULT if notify daemon is running or not.")
    def NotifdState(self):
        return DevState.ON

    @attribute(dtype=tango.DevShort)
    def HostState(self):
        return int(self._state)

    @attribute(dtype=(str,), max_dim_x=1024)
    def RunningServers(self):
        with self._lock:
            return self._values()["RunningServers"]

    @attribute(dtype=(str,), max_dim_x=1024, label="All Stopped Servers", description="Return all the Stopped servers.")
    def StoppedServers(self):
        with self._lock:
            return self._values()["StoppedServers"]

    @attribute(
        dtype=(str,),
        max_dim_x=1024,
        label="Servers",
        description="Return all registered servers for this host.\nServer names are followed by:   [states] [controlled] [level] [nb instances]\n"
        "If nb instances >1 a warning will be displayed in Astor",
    )
    def Servers(self):
        with self._lock:
            return self._values()["Servers"]


# ---- start ----------------------------------------------------------------------------------


def wait_for_database():
    """Like the Starter (a daemon that retries its database connection): wait until the database answers."""
    attempt = 0
    while True:
        try:
            db = tango.Database()
            db.get_info()
            return db
        except tango.DevFailed as error:
            if attempt % 10 == 0:
                say("waiting for the Tango database (%s): %s" % (os.environ.get("TANGO_HOST", "TANGO_HOST not set"), error.args[0].desc.strip()))
            attempt += 1
            time.sleep(1.0)


def register(db, instance):
    """Defines Starter/<instance> with its device in the database when it is not there (what Astor expects)."""
    domain = (db.get_class_property("Starter", ["Domain"]).get("Domain") or ["tango"])[0]
    device = "%s/admin/%s" % (domain, instance)
    server = "Starter/%s" % instance
    try:
        info = db.get_device_info(device)
        if info.ds_full_name.lower() == server.lower() and info.class_name == "Starter":
            return device
    except tango.DevFailed:
        pass
    entry = tango.DbDevInfo()
    entry.name = device
    entry._class = "Starter"
    entry.server = server
    db.add_device(entry)
    say("registered %s (class Starter) of server %s in the database" % (device, server))
    return device


def main():
    if len(sys.argv) < 2:
        sys.stderr.write("usage: starter_device.py HOST [tango server options]\n")
        return 2
    instance = sys.argv[1]
    path = os.environ.get("STARTER_CONTROL_SOCKET", "/run/starter-init.sock")
    db = wait_for_database()
    device = register(db, instance)

    def lost():
        # The init is gone or dropped us: end, and be restarted (the init restarts its servers).
        say("the connection to starter-init at %s is lost; exiting" % path)
        os._exit(3)

    try:
        def subscribe_again():
            # The init re-executed itself: its status now, applied as the events of a change would be.
            snapshot = Starter.control.request("watch", {}, timeout=10.0)
            Starter.events.put(("servers", {"changed": snapshot.get("servers") or []}))
            Starter.events.put(("sources", snapshot.get("sources") or []))

        Starter.control = ControlClient(path, lambda name, data: Starter.events.put((name, data)), lost, subscribe_again)
        Starter.snapshot = Starter.control.request("watch", {}, timeout=10.0)
    except (OSError, ControlError) as error:
        say("cannot subscribe to starter-init at %s: %s" % (path, error))
        return 1
    say("%s: %d server(s) from starter-init at %s" % (device, len(Starter.snapshot.get("servers") or []), path))
    run((Starter,), args=["Starter", instance] + sys.argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
