# The build stage runs exactly what CI runs to build (scripts/install-deps.sh, then CMake);
# scripts/fresh-check.sh runs these lines on a bare bookworm root and tests/dockerfile_test.sh
# keeps them naming the install script.
FROM debian:bookworm AS build
WORKDIR /src
COPY . .
ENV FLIKPAY_SKIP_GO_TOOLS=1
RUN bash scripts/install-deps.sh \
 && cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLIKPAY_BUILD_TESTS=OFF \
 && cmake --build build --target flikpay-server bankart-sim

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libgrpc++1.51 libprotobuf32 libabsl20220623 libhiredis0.14 libcurl4 \
      libcpp-httplib0.11 libpugixml1v5 libssl3 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/server/flikpay-server /src/build/gateway/bankart-sim /usr/local/bin/
USER 10001
EXPOSE 50051 8080 9090
ENTRYPOINT ["/usr/local/bin/flikpay-server"]
