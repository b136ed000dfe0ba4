#!/usr/bin/env bash
# The demo: starter-init as PID 1 of a fresh PID namespace boots six real TangoTest servers over
# three levels, a PyTango client pings each one as soon as the init says the boot is complete, one
# server is killed with SIGKILL and comes back, then SIGTERM stops everything in reverse order.
set -euo pipefail
cd "$(dirname "$0")/.."
config=test/fixtures/tango/demo.yaml
binary=dist/starter-init
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "== plan: what would start, in which order, with which command"
"$binary" plan --config "$config"

echo
echo "== boot: starter-init as PID 1 of a new PID namespace"
unshare --pid --fork --mount-proc --kill-child "$binary" --log-format json --config "$config" \
  > "$out/console" 2> "$out/log.json" &
runner=$!
tail -n +1 -f "$out/console" &
tailer=$!
trap 'kill "$tailer" 2>/dev/null; rm -rf "$out"' EXIT
for _ in $(seq 1 300); do grep -q "boot complete" "$out/console" 2>/dev/null && break; sleep 0.1; done
grep -q "boot complete" "$out/console" || { echo "demo: the boot did not complete"; cat "$out/log.json"; exit 1; }

echo
echo "== a Tango client pings every device"
/usr/bin/python3 - <<'PY'
import tango
for n in range(1, 7):
    proxy = tango.DeviceProxy(f"tango://127.0.0.1:{20000 + n}/sys/tg_test/{n}#dbase=no")
    print(f"  sys/tg_test/{n}: ping {proxy.ping()} us, state {proxy.state()}, double_scalar {proxy.read_attribute('double_scalar').value:.3f}")
PY

echo
echo "== the CLI: status, and the boot sorted by time to ready"
"$binary" status --config "$config"
"$binary" analyze blame --config "$config"

echo
echo "== kill -9 of TangoTest/demo3: the init sees the exit at once and restarts it"
victim=$(pgrep -f "TangoTest demo3 ")
kill -9 "$victim"
for _ in $(seq 1 100); do [ "$(grep -c 'demo3 ready' "$out/console")" -ge 2 ] && break; sleep 0.1; done
/usr/bin/python3 -c "import tango; print('  sys/tg_test/3 answers again: ping', tango.DeviceProxy('tango://127.0.0.1:20003/sys/tg_test/3#dbase=no').ping(), 'us')"

echo
echo "== SIGTERM to the init: levels stop in reverse order"
# unshare does not forward signals: send it to the init (unshare's child) itself.
kill -TERM "$(cat /proc/"$runner"/task/*/children | head -n1 | cut -d' ' -f1)"
wait "$runner" && status=0 || status=$?
sleep 0.2
echo "init exit code: $status"
echo "Starter-style server logs: $(ls /tmp/starter-init-demo/ds.log/ | tr '\n' ' ')"
exit "$status"
