# metrics: process-wide counters and gauges (metrics.c) and the Prometheus
# text endpoint GET /metrics (metrics_http.c, libmicrohttpd); docs/security.md.
list(APPEND IMS_SOURCES
  src/metrics/metrics.c
  src/metrics/metrics_http.c)
# libmicrohttpd (Debian libmicrohttpd-dev), linked by imscore as PkgConfig::MHD
pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)
