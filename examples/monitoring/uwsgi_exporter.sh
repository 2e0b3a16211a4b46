#!/bin/sh
# Prometheus uwsgi_exporter: a stats socket, a TCP address, an HTTP endpoint or the file itself.
uwsgi_exporter --stats.uri=unix:///run/app/stats.sock
# uwsgi_exporter --stats.uri=tcp://127.0.0.1:1717
# uwsgi_exporter --stats.uri=http://127.0.0.1:1718
# uwsgi_exporter --stats.uri=file:///dev/shm/app-status.json
