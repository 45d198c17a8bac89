# flikpay's two images, from this one file:
#   docker build -t flikpay .                             production: flikpay-server only
#   docker build --target sandbox -t flikpay-sandbox .    adds bankart-sim (Helm's sandbox mode)
# The last stage is Docker's default, so a plain `docker build .` gives the production image, and
# bankart-sim never ships in that one: its control API (/_sim/...) answers anyone who reaches it.
# The Helm chart looks for the sandbox image in the server's repository with "-sandbox" appended.
#
# build: exactly what CI runs to build (scripts/install-deps.sh, then CMake); scripts/fresh-check.sh
#   runs these lines on a bare bookworm root and tests/dockerfile_test.sh keeps them naming the
#   install script.
# runtime: debian:bookworm-slim with only the shared libraries flikpay-server loads (the sandbox
#   stage adds bankart-sim's). The package lists are proven, not guessed: scripts/fresh-check.sh
#   runs the server stage's RUN lines on a bare minbase root and checks flikpay-server there (every
#   library `ldd` resolves found with `dpkg -S` among what the stage installs, ldd clean in that
#   root), then the sandbox stage's extra lines and bankart-sim, and starts both binaries as user
#   10001 on a read-only root.
# Read-only root file system: flikpay-server writes only under $TMPDIR (its private copy of the
#   gRPC TLS files), so with readOnlyRootFilesystem mount an emptyDir at /tmp. bankart-sim writes
#   no files (its journal and state are in memory).
FROM debian:bookworm AS build
WORKDIR /src
COPY . .
ENV FLIKPAY_SKIP_GO_TOOLS=1
RUN bash scripts/install-deps.sh \
 && cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLIKPAY_BUILD_TESTS=OFF \
 && cmake --build build --target flikpay-server bankart-sim
# Debug sections only (flikpay-server: 35 MB to 2 MB): the symbol tables stay for backtraces, and
# what tests/hardening_test.sh checks (PIE, RELRO, BIND_NOW, stack, _chk calls) is untouched;
# scripts/fresh-check.sh runs that test on these stripped files.
RUN strip --strip-debug build/server/flikpay-server build/gateway/bankart-sim

FROM debian:bookworm-slim AS runtime
# A passwd entry for uid 10001, so tools (ps, id) show a name; no home, no shell.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libgrpc++1.51 libprotobuf32 libabsl20220623 libhiredis0.14 libcurl4 \
      libpugixml1v5 libssl3 libprometheus-cpp-core1.0 \
 && rm -rf /var/lib/apt/lists/* \
 && echo 'flikpay:x:10001:10001:flikpay:/nonexistent:/usr/sbin/nologin' >>/etc/passwd \
 && echo 'flikpay:x:10001:' >>/etc/group
ENV TMPDIR=/tmp
USER 10001:10001
EXPOSE 50051 8080 9090
ENTRYPOINT ["/usr/local/bin/flikpay-server"]

# Sandbox: also bankart-sim, for the Helm chart's sandbox mode, which runs it beside the service by
# overriding the command with /usr/local/bin/bankart-sim (it listens on 8480).
FROM runtime AS sandbox
# cpp-httplib is bankart-sim's HTTP server only; the production image goes without it.
USER root
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libcpp-httplib0.11 \
 && rm -rf /var/lib/apt/lists/*
USER 10001:10001
COPY --from=build /src/build/server/flikpay-server /src/build/gateway/bankart-sim /usr/local/bin/
EXPOSE 8480

# Production, the default target: last on purpose.
FROM runtime AS server
COPY --from=build /src/build/server/flikpay-server /usr/local/bin/
