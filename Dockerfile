# The container image of mqtt-rules: one static binary on an empty base,
# running as an unprivileged user. docs/install.md explains it.
#
#   docker build -t mqtt-rules --build-arg VERSION="$(git describe --tags --always --dirty)" .
#   docker run -d --name mqtt-rules -v "$PWD/rules:/rules:ro" -v mqtt-rules-state:/state \
#     -p 127.0.0.1:9464:9464 mqtt-rules run --rules /rules --state /state/state.db \
#     --http 0.0.0.0:9464 --broker tcp://broker.lan:1883
#
# scripts/container-test.sh builds and runs it.

# The builder: Go 1.26 (any 1.26.x). GO_IMAGE picks another image of it,
# say one in a local mirror.
ARG GO_IMAGE=golang:1.26

FROM ${GO_IMAGE} AS build
WORKDIR /src
# Modules first: this layer stays cached while only the sources change.
COPY go.mod go.sum ./
# GOPROXY, when given (--build-arg GOPROXY=...), is the module proxy to use.
ARG GOPROXY
RUN go mod download
COPY . .
# VERSION is what `mqtt-rules version` prints ("dev" when empty).
ARG VERSION=
# Set by `docker buildx build --platform linux/arm/v6` and the like: the
# builder then runs as the target (emulated), and GOARM follows the variant.
ARG TARGETVARIANT=
# timetzdata: the image has no /usr/share/zoneinfo, so the time zone
# database (for TZ and schedules' time zones) is built into the binary.
RUN GOARM="${TARGETVARIANT#v}" CGO_ENABLED=0 go build -trimpath -tags timetzdata \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/usr/local/bin/mqtt-rules ./cmd/mqtt-rules \
 && mkdir -p /out/etc/ssl/certs /out/rules /out/state /out/tmp \
 && cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nmqtt-rules:x:10001:10001:mqtt-rules:/nonexistent:/sbin/nologin\n' >/out/etc/passwd \
 && printf 'root:x:0:\nmqtt-rules:x:10001:\n' >/out/etc/group \
 && chmod 1777 /out/tmp && chown 10001:10001 /out/state && chmod 0700 /out/state

FROM scratch
# CA certificates (for ssl://, mqtts://, wss:// brokers and https webhooks),
# the user, the binary, /rules (read-only to the user), /state (the user's
# own, 0700) and /tmp: one COPY keeps the directories' owners and modes.
COPY --from=build /out/ /
USER 10001:10001
VOLUME ["/rules", "/state"]
# 9464: /metrics, /healthz, /readyz, /api and the status page.
# 1883: the embedded broker, started when no --broker is given. It has no
# authentication: publish it on 127.0.0.1 of the host, or not at all.
EXPOSE 9464 1883
ENTRYPOINT ["/usr/local/bin/mqtt-rules"]
CMD ["run", "--rules", "/rules", "--state", "/state/state.db", "--http", "0.0.0.0:9464", "--embedded-broker", "0.0.0.0:1883"]
# No shell or curl in the image: the binary probes /healthz itself. Keep
# --http on port 9464 in the container (publish it on any port); with
# another, give an exec-form healthcheck (test: ["CMD", ...] in
# docker-compose.yml), since --health-cmd needs a shell.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/mqtt-rules", "healthcheck", "http://127.0.0.1:9464/healthz"]
