#!/usr/bin/env bash
# Builds the images the documented way (assemble.sh + docker build) and measures what the README
# quotes: image sizes, `docker stop` time, time from `docker run` to healthy.
#
#   test/e2e/docker/measure.sh [runs]      (after npm run build; needs a running engine, test/prereqs.sh)
#
# Images: starter-init:min (init only), starter-init:busybox (init + busybox), starter-init:demo
# (init + busybox + 6 TangoTest over 3 levels, test/fixtures/docker/demo.yaml). They are kept.
set -euo pipefail
top=$(cd "$(dirname "$0")/../../.." && pwd)
runs=${1:-3}
work=$(mktemp -d /tmp/starter-init-measure.XXXXXX)
trap 'rm -rf "$work"; docker rm -f si-measure >/dev/null 2>&1 || true' EXIT

now_ms() { date +%s%3N; }

build() { # tag, assemble.sh arguments…
  local tag=$1; shift
  "$top/rootfs/assemble.sh" --out "$work/$tag" "$@" >/dev/null
  DOCKER_BUILDKIT=0 docker build -q -f "$top/Dockerfile" -t "starter-init:$tag" "$work/$tag" >/dev/null 2>&1
}
build min
build busybox --with busybox
build demo --with busybox --with tango --config "$top/test/fixtures/docker/demo.yaml"
echo "== docker image ls"
docker image ls starter-init --format '{{.Repository}}:{{.Tag}}\t{{.Size}}'
for tag in min busybox demo; do
  printf 'starter-init:%s\t%s bytes\n' "$tag" "$(docker image inspect -f '{{.Size}}' "starter-init:$tag")"
done

echo "== docker run --rm starter-init:min -- /sbin/starter-init --version (whole docker run, wall time)"
for _ in $(seq "$runs"); do
  t0=$(now_ms); docker run --rm starter-init:min --log-level error -- /sbin/starter-init --version >/dev/null; echo "  $(( $(now_ms) - t0 )) ms"
done

echo "== docker stop, -- mode (busybox: sleep inf, no handler → 143)"
for _ in $(seq "$runs"); do
  docker run -d --name si-measure starter-init:busybox -- sleep inf >/dev/null
  sleep 0.5
  t0=$(now_ms); docker stop si-measure >/dev/null; t1=$(now_ms)
  echo "  $((t1 - t0)) ms, exit $(docker inspect -f '{{.State.ExitCode}}' si-measure)"
  docker rm si-measure >/dev/null
done

ports=(-p 127.0.0.1:27101-27106:27101-27106)
echo "== demo: docker run → every server ready (log) → healthy (HEALTHCHECK as built: interval 5s) → docker stop"
for _ in $(seq "$runs"); do
  t0=$(now_ms)
  docker run -d --name si-measure "${ports[@]}" starter-init:demo >/dev/null
  ready=""; healthy=""
  while [ -z "$healthy" ]; do
    [ -n "$ready" ] || { docker logs si-measure 2>/dev/null | grep -q "boot complete" && ready=$(( $(now_ms) - t0 )); }
    [ "$(docker inspect -f '{{.State.Health.Status}}' si-measure)" = healthy ] && healthy=$(( $(now_ms) - t0 ))
    [ $(( $(now_ms) - t0 )) -lt 60000 ] || { echo "  not healthy after 60 s" >&2; exit 1; }
    sleep 0.05
  done
  /usr/bin/python3 -c 'import tango; [tango.DeviceProxy("tango://127.0.0.1:%d/sys/tg_test/%d#dbase=no" % (27100 + i, i)).ping() for i in range(1, 7)]'
  t1=$(now_ms); docker stop si-measure >/dev/null; t2=$(now_ms)
  echo "  boot complete $ready ms, healthy $healthy ms, 6 pings ok, docker stop $((t2 - t1)) ms, exit $(docker inspect -f '{{.State.ExitCode}}' si-measure)"
  docker rm si-measure >/dev/null
done

echo "== demo with --health-interval=1s (the floor set by the health check's interval)"
for _ in $(seq "$runs"); do
  t0=$(now_ms)
  docker run -d --name si-measure --health-interval=1s "${ports[@]}" starter-init:demo >/dev/null
  until [ "$(docker inspect -f '{{.State.Health.Status}}' si-measure)" = healthy ]; do
    [ $(( $(now_ms) - t0 )) -lt 60000 ] || { echo "  not healthy after 60 s" >&2; exit 1; }
    sleep 0.05
  done
  echo "  healthy $(( $(now_ms) - t0 )) ms"
  docker rm -f si-measure >/dev/null
done

echo "== cost of one health check (starter-init ready inside the running demo)"
docker run -d --name si-measure "${ports[@]}" starter-init:demo >/dev/null
sleep 2
for _ in $(seq "$runs"); do
  t0=$(now_ms); rc=0; docker exec si-measure /sbin/starter-init ready >/dev/null || rc=$?
  echo "  docker exec … ready: $(( $(now_ms) - t0 )) ms wall, exit $rc"
done
docker exec si-measure sh -c 'time /sbin/starter-init ready' 2>&1 | grep -E "real|user|sys" | tr '\n' ' '; echo
