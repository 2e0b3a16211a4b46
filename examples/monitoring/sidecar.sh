#!/bin/sh
# The addresses above, served by one sidecar each, for an app that only writes the file.
wsgi-status serve /dev/shm/app-status.json --stats /run/app/stats.sock &
wsgi-status serve /dev/shm/app-status.json --stats 127.0.0.1:1717 &
wsgi-status serve /dev/shm/app-status.json --stats 127.0.0.1:1718 --stats-http &
wait
