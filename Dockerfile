# syntax=docker/dockerfile:1
#
# sentimentd and sentimentctl, static, on distroless (no shell, no package
# manager; CA certificates included). The zone database is compiled into
# sentimentd (time/tzdata) for SENTIMENT_COST_TZ.
#
#   docker build -t catalyst-sentiment/sentimentd:dev .
#
# deploy/deploy_test.go checks that the final stage runs as a non-root user
# and exposes the ports the manifests use.

FROM golang:1.26 AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "-s -w" -o /out/sentimentd ./cmd/sentimentd && \
    go build -trimpath -ldflags "-s -w" -o /out/sentimentctl ./cmd/sentimentctl

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sentimentd /out/sentimentctl /usr/local/bin/
# nonroot:nonroot of the distroless image.
USER 65532:65532
# gRPC (SENTIMENT_GRPC_ADDR) and metrics (SENTIMENT_METRICS_ADDR).
EXPOSE 50051 9090
ENTRYPOINT ["/usr/local/bin/sentimentd"]
