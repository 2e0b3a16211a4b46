#!/bin/sh
# uwsgitop: a unix socket path, host:port (raw TCP) or an http:// URL (statsHttp).
uwsgitop /run/app/stats.sock
# uwsgitop 127.0.0.1:1717
# uwsgitop http://127.0.0.1:1718
