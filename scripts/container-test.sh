#!/usr/bin/env bash
# Builds the container image from the Dockerfile and runs it with the rules
# of examples/home-automation mounted: the image's HEALTHCHECK must pass,
# `mqtt-rules version` must print the version it was built with, the ports
# published on 127.0.0.1 must answer (/healthz, /readyz, and with
# mosquitto_pub/mosquitto_sub installed, a rule firing through the embedded
# broker), and SIGTERM must stop it cleanly. docs/install.md describes the
# image.
#
#   scripts/container-test.sh                  fail when no engine can build it
#   scripts/container-test.sh --if-available   skip (exit 0, saying why) then
#
# Environment:
#   CONTAINER_ENGINE    docker or podman (default: the first whose daemon or
#                       storage answers, docker first)
#   CONTAINER_RUN_ARGS  extra flags for `run` (say, --ulimit nofile=1024:1024
#                       --ulimit nproc=4096:4096 where podman may not raise
#                       the limits it sets by default)
#   GO_IMAGE            the builder's base image (default: the Dockerfile's)
#   TIMEOUT             seconds to wait for each check (default 60)
#
# When GO_IMAGE is neither present nor pullable (a machine without access to
# a registry), the builder stage runs on a stand-in: an image made here of
# this machine's Go toolchain (the version go.mod asks for) and a static
# busybox for the shell. The Dockerfile is otherwise built as is.
set -euo pipefail
cd "$(dirname "$0")/.."

optional=false
case "${1:-}" in
--if-available) optional=true ;;
"") ;;
*)
  echo "usage: $0 [--if-available]" >&2
  exit 2
  ;;
esac

# skip ends the test when it cannot run here: an error, unless optional.
skip() {
  if $optional; then
    echo "container test SKIPPED: $*"
    exit 0
  fi
  echo "container test: cannot run: $*" >&2
  exit 1
}

timeout=${TIMEOUT:-60}
image=mqtt-rules:container-test
name=mqtt-rules-container-test-$$
version=$(git describe --tags --always --dirty 2>/dev/null || true)
version=${version:-container-test}

# The engine: the first that answers.
engine=""
why=()
for e in ${CONTAINER_ENGINE:-docker podman}; do
  if ! command -v "$e" >/dev/null 2>&1; then
    why+=("$e: not installed")
    continue
  fi
  if out=$("$e" info 2>&1 >/dev/null); then
    engine=$e
    break
  fi
  why+=("$e: \`$e info\` failed: $(printf '%s\n' "$out" | grep -v '^\s*$' | tail -n 1)")
done
if [ -z "$engine" ]; then
  reasons=$(printf '%s; ' "${why[@]}")
  skip "no usable container engine (${reasons%; })"
fi
echo "container engine: $engine ($("$engine" version --format '{{.Server.Version}}' 2>/dev/null || "$engine" --version))"

# The builder's base image: pulled, or made here.
go_image=${GO_IMAGE:-$(sed -n 's/^ARG GO_IMAGE=//p' Dockerfile)}
if ! "$engine" image inspect "$go_image" >/dev/null 2>&1; then
  if ! pull=$("$engine" pull "$go_image" 2>&1); then
    reason="$go_image cannot be pulled: $(printf '%s\n' "$pull" | grep -v '^\s*$' | tail -n 1)"
    want=$(sed -n 's/^go \([0-9]*\.[0-9]*\).*/go\1/p' go.mod)
    have=$(go env GOVERSION 2>/dev/null || true)
    busybox=$(command -v busybox || true)
    case "$have" in
    "$want" | "$want".*) ;;
    *) skip "$reason; no local $want toolchain for a stand-in (go: ${have:-not installed})" ;;
    esac
    # ldd fails on a static binary ("not a dynamic executable").
    if [ -z "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
      skip "$reason; no static busybox for a stand-in (Debian: apt-get install busybox-static)"
    fi
    go_image=mqtt-rules-go-standin:$have
    echo "$reason"
    echo "building the builder stage on $go_image: this machine's $(go env GOROOT) and $busybox"
    if ! "$engine" image inspect "$go_image" >/dev/null 2>&1; then
      ctx=$(mktemp -d)
      trap 'rm -rf "$ctx"' EXIT
      cp "$busybox" "$ctx/busybox"
      # Hard links when on the same file system: no copy of the toolchain.
      cp -al "$(go env GOROOT)" "$ctx/go" 2>/dev/null || {
        rm -rf "$ctx/go"
        cp -a "$(go env GOROOT)" "$ctx/go"
      }
      cp /etc/ssl/certs/ca-certificates.crt "$ctx/"
      cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN mkdir -p -m 1777 /tmp && mkdir -p /etc/ssl/certs /go /root
COPY ca-certificates.crt /etc/ssl/certs/
COPY go /usr/local/go
ENV PATH=/usr/local/go/bin:/go/bin:/bin GOPATH=/go GOTOOLCHAIN=local HOME=/root
EOF
      "$engine" build -q -t "$go_image" "$ctx" >/dev/null
      rm -rf "$ctx"
      trap - EXIT
    fi
  fi
fi

echo "== $engine build ($version, builder $go_image)"
build_args=(--build-arg "GO_IMAGE=$go_image" --build-arg "VERSION=$version")
if [ -n "$(go env GOPROXY 2>/dev/null)" ]; then
  build_args+=(--build-arg "GOPROXY=$(go env GOPROXY)")
fi
if [ "$engine" = podman ]; then
  # The OCI image format has no HEALTHCHECK; the docker format keeps it.
  build_args+=(--format docker)
fi
"$engine" build "${build_args[@]}" -t "$image" .

user=$("$engine" image inspect --format '{{.Config.User}}' "$image")
case "$user" in
"" | 0 | 0:* | root | root:*) echo "FAIL: the image runs as root (User \"$user\")" >&2; exit 1 ;;
esac
echo "image user: $user"

cleanup() {
  if [ "${failed:-}" ]; then
    echo "--- container logs" >&2
    "$engine" logs "$name" >&2 2>&1 || true
  fi
  "$engine" rm -f -v "$name" >/dev/null 2>&1 || true
}
trap cleanup EXIT
fail() {
  failed=1
  echo "FAIL: $*" >&2
  exit 1
}

echo "== $engine run"
# The image's own command, with the example rules; ports on 127.0.0.1 of
# this machine, on ports the engine picks. A short health interval so the
# HEALTHCHECK has run within the deadline.
# shellcheck disable=SC2086 # CONTAINER_RUN_ARGS is a list of flags
"$engine" run -d --name "$name" ${CONTAINER_RUN_ARGS:-} \
  --health-interval 1s \
  -v "$PWD/examples/home-automation:/rules:ro,z" \
  -p 127.0.0.1::9464 -p 127.0.0.1::1883 \
  "$image" >/dev/null || fail "$engine run"

# waitfor DESCRIPTION COMMAND...: polls COMMAND until it succeeds, the
# container stops, or the deadline passes.
waitfor() {
  local what=$1 deadline=$((SECONDS + timeout))
  shift
  until "$@" >/dev/null 2>&1; do
    if [ "$("$engine" inspect --format '{{.State.Running}}' "$name")" != true ]; then
      fail "the container stopped while waiting for $what"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      fail "no $what within ${timeout}s"
    fi
    sleep 0.5
  done
  echo "ok: $what"
}

healthy() {
  if [ "$engine" = podman ]; then
    # Runs the image's HEALTHCHECK now (podman schedules it with systemd,
    # which a CI machine may lack).
    podman healthcheck run "$name"
  else
    [ "$("$engine" inspect --format '{{.State.Health.Status}}' "$name")" = healthy ]
  fi
}
waitfor "healthy state (the image's HEALTHCHECK)" healthy

got=$("$engine" exec "$name" mqtt-rules version) || fail "mqtt-rules version in the container"
case "$got" in
"mqtt-rules $version ("*) echo "ok: $got" ;;
*) fail "mqtt-rules version printed \"$got\", want \"mqtt-rules $version (...)\"" ;;
esac

http=$("$engine" port "$name" 9464/tcp | head -n 1)
mqtt=$("$engine" port "$name" 1883/tcp | head -n 1)
if command -v curl >/dev/null 2>&1; then
  waitfor "/healthz on $http" curl -fsS "http://$http/healthz"
  waitfor "/readyz on $http (rules loaded, embedded broker connected)" curl -fsS "http://$http/readyz"
else
  echo "curl not installed: /healthz and /readyz checked from inside only"
fi

if command -v mosquitto_pub >/dev/null 2>&1 && command -v mosquitto_sub >/dev/null 2>&1; then
  # motion-turns-light-on answers a dark room's motion with a light command.
  out=$(mktemp)
  mosquitto_sub -h "${mqtt%:*}" -p "${mqtt##*:}" -t zigbee2mqtt/hallway/light/set -C 1 -W "$timeout" >"$out" 2>&1 &
  sub=$!
  published() {
    # Until the subscriber has it: it may not be subscribed yet.
    [ -s "$out" ] && return 0
    kill -0 "$sub" 2>/dev/null || return 0
    mosquitto_pub -h "${mqtt%:*}" -p "${mqtt##*:}" -t zigbee2mqtt/hallway/motion -m '{"occupancy":true,"illuminance_lux":12}'
    [ -s "$out" ]
  }
  waitfor "a rule firing through the embedded broker on $mqtt" published
  wait "$sub" || fail "mosquitto_sub: $(cat "$out")"
  case "$(cat "$out")" in
  *'"state":"ON"'*) echo "ok: zigbee2mqtt/hallway/light/set $(cat "$out")" ;;
  *) fail "zigbee2mqtt/hallway/light/set got \"$(cat "$out")\"" ;;
  esac
  rm -f "$out"
else
  echo "mosquitto_pub/mosquitto_sub not installed: the embedded broker is not checked"
fi

echo "== $engine stop"
"$engine" stop -t 20 "$name" >/dev/null
code=$("$engine" inspect --format '{{.State.ExitCode}}' "$name")
[ "$code" = 0 ] || fail "exit code $code after SIGTERM, want 0"
"$engine" logs "$name" 2>&1 | grep -q 'shutting down' || fail "no \"shutting down\" in the logs after SIGTERM"
echo "ok: SIGTERM stops it cleanly (exit 0)"
echo "container test passed"
