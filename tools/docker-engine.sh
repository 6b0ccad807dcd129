#!/bin/sh
# Starts (start) or stops (stop) a Docker engine for the container tests (make test-containers):
# installs Debian's docker.io when dockerd is missing, runs dockerd as root with host networking
# only (--bridge=none --iptables=false: every container uses the host's 127.0.0.1), its own data
# root and socket, and waits for it to answer. It prints the DOCKER_HOST to use. A daemon this
# script did not start is left alone by stop.
set -eu
dir=${DOCKER_ENGINE_DIR:-/tmp/scimflow-docker}
sock=$dir/docker.sock
pidfile=$dir/dockerd.pid
case "${1:-}" in
start)
	if [ "$(id -u)" -ne 0 ]; then
		echo "docker-engine: dockerd must run as root (this user is $(id -un))" >&2
		exit 1
	fi
	if ! command -v dockerd >/dev/null 2>&1; then
		echo "docker-engine: installing Debian's docker.io (apt-get)" >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get -o DPkg::Lock::Timeout=300 install -y -q docker.io >/dev/null ||
			{ apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null && apt-get -o DPkg::Lock::Timeout=300 install -y -q docker.io >/dev/null; }
	fi
	mkdir -p "$dir"
	if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
		echo "unix://$sock"
		exit 0
	fi
	dockerd --host "unix://$sock" --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$pidfile" \
		--bridge=none --iptables=false --ip6tables=false >"$dir/dockerd.log" 2>&1 &
	i=0
	until DOCKER_HOST="unix://$sock" docker version >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -gt 60 ]; then
			echo "docker-engine: dockerd did not answer within 60 s; its log:" >&2
			tail -30 "$dir/dockerd.log" >&2
			exit 1
		fi
		sleep 1
	done
	echo "unix://$sock"
	;;
stop)
	if [ -f "$pidfile" ]; then
		pid=$(cat "$pidfile")
		kill "$pid" 2>/dev/null || true
		i=0
		while kill -0 "$pid" 2>/dev/null && [ $i -lt 30 ]; do i=$((i + 1)); sleep 1; done
		rm -f "$pidfile"
	fi
	;;
*)
	echo "usage: $0 start|stop" >&2
	exit 2
	;;
esac
