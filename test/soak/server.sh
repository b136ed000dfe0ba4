#!/bin/sh
# The soak's servers, one kind per argument (see soak.mjs for how many of each run):
#   steady | slow | flapper | stubborn | flooder | orphaner | forker | notify | touch FILE | sdnotify | crasher
#   hook PERCENT       a preStart or postStop that hangs in PERCENT % of its runs, else ends at once
# Each prints "ready" when it is (log readiness), except notify (fd 3), touch (a file) and sdnotify.
kind=$1
rand() { od -An -N2 -tu2 /dev/urandom | tr -d ' '; }
case $kind in
  steady)
    echo ready
    exec sleep 100000 ;;
  slow)
    # Ready after 0.3 to 3 s.
    ms=$(( $(rand) % 2700 + 300 ))
    sleep "$(( ms / 1000 )).$(( ms % 1000 / 100 ))"
    echo ready
    exec sleep 100000 ;;
  flapper)
    # Ready, then a crash 2 to 8 s later.
    echo ready
    sleep $(( $(rand) % 7 + 2 ))
    exit 1 ;;
  stubborn)
    # Ignores SIGTERM (and so do its children): only SIGKILL ends it.
    trap '' TERM
    echo ready
    while :; do sleep 1; done ;;
  flooder)
    # About 200 KB/s of output, in 100-byte lines.
    echo ready
    while :; do head -c 20000 /dev/zero | tr '\0' x | fold -w 99; sleep 0.1; done ;;
  orphaner)
    # A few orphans a second; SIGUSR1 makes a storm of 200 at once. They end within a second.
    trap 'i=0; while [ $i -lt 200 ]; do (sleep 0.$(( $(rand) % 9 + 1 )) &); i=$((i+1)); done' USR1
    echo ready
    while :; do
      (sleep 0.3 &)
      sleep 0.4 &
      wait $!
    done ;;
  forker)
    # Workers in its own process group, forked again and again.
    echo ready
    while :; do
      sleep 1 &
      sleep 2 &
      wait
    done ;;
  notify)
    # s6 readiness: a newline on fd 3.
    sleep 0.1
    echo >&3
    exec 3>&-
    exec sleep 100000 ;;
  touch)
    rm -f "$2"
    sleep 0.2
    : > "$2"
    exec sleep 100000 ;;
  sdnotify)
    exec python3 -c 'import os, socket, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
time.sleep(100000)' ;;
  crasher)
    echo "crashing at once"
    exit 3 ;;
  hook)
    if [ $(( $(rand) % 100 )) -lt "$2" ]; then exec sleep 100000; fi
    exit 0 ;;
  *)
    echo "server.sh: unknown kind $kind" >&2
    exit 2 ;;
esac
