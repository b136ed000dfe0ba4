# starter-init as the ENTRYPOINT of a FROM scratch image, built from a root assembled on the host
# (no registry is needed). The build context is the assembled root itself:
#
#   npm run build
#   rootfs/assemble.sh --out build/rootfs --config my-servers.yaml [--with busybox] [--with tango]
#   docker build -f Dockerfile -t starter-init build/rootfs
#
# The config is baked at /etc/starter-init/config.yaml (the init's default path); mount another over
# it, or pass `--config FILE` as the command. `docker run IMAGE -- cmd args…` runs cmd as the main
# program instead (tini mode); an image made for that sets ENTRYPOINT ["/sbin/starter-init", "--"].
FROM scratch
# The assembled root, relative to the build context: the context itself by default.
ARG ROOTFS=.
COPY ${ROOTFS}/ /

# docker stop sends SIGTERM: an ordered shutdown (levels in reverse order), then exit 0.
STOPSIGNAL SIGTERM
# `ready` asks the running init over its control socket whether every server of the boot levels is
# ready; it exits non-zero otherwise (and when no init answers).
HEALTHCHECK --interval=5s --timeout=5s --start-period=60s --retries=3 CMD ["/sbin/starter-init", "ready"]
ENTRYPOINT ["/sbin/starter-init"]
