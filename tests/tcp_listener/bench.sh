# tcp_listener benchmark (make bench): rust44's in-kernel server and Debian's nginx (nginx-light,
# 4 workers, reuseport listeners, sendfile) serving the same files from a tmpfs, measured in one
# boot by Debian's wrk (4 threads, 32 connections) running in the same guest: new connections
# per second (Connection: close, so every request is a connection: the listener's path),
# requests per second with keep-alive for a 1 KiB and a 1 MiB file, and wrk's p99 latency.
# nginx and wrk come from the suite's own image (tools/guest-image.sh web); the guest chroots into it.
# Each row runs both servers back to back, which one goes first alternating, ROUNDS (3) times;
# the table shows medians and their ratio (tcp_listener / nginx), and every run.
cd /rust44/tests/tcp_listener || exit 1
. /rust44/ktap.sh
RUNTIME=${BENCH_RUNTIME:-5}
ROUNDS=${ROUNDS:-3}
WEB=/mnt/web
DOC=$WEB/www
OUT=/tmp/web-bench.runs
CFS=/sys/kernel/config/tcp_listener
PORT_RUST=8080
PORT_NGINX=8081
# name|path|close (Connection: close on every request) or keep
JOBS="new connections/s (1 KiB, no keep-alive)|/1k|close
keep-alive req/s, 1 KiB|/1k|keep
keep-alive req/s, 1 MiB|/1m|keep"
NJOBS=$(echo "$JOBS" | wc -l)

job() { echo "$JOBS" | sed -n "${1}p" | cut -d'|' -f"$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a != "") printf "%.2fx", a / b; else print "n/a" }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }

setup() {
	ip link set lo up
	dev=""
	for b in /sys/block/vd*; do
		[ "$(cat "$b/serial" 2>/dev/null)" = rust44web ] && dev=/dev/$(basename "$b")
	done
	[ -n "$dev" ] || { echo "no nginx/wrk image (tools/guest-image.sh web, make deps)"; return 1; }
	mkdir -p $WEB && mount -o ro "$dev" $WEB || return 1
	mount -t tmpfs tmpfs $WEB/tmp && mount -t tmpfs tmpfs $WEB/run && mount -t tmpfs tmpfs $WEB/var/lib/nginx &&
		mount -t tmpfs tmpfs $WEB/var/log/nginx || return 1
	mount -t proc proc $WEB/proc && mount --bind /dev $WEB/dev && mount -t sysfs sysfs $WEB/sys || return 1
	mkdir -p $WEB/tmp/www
	DOC=$WEB/tmp/www
	head -c 1024 /dev/urandom >$DOC/1k
	head -c 1048576 /dev/urandom >$DOC/1m
	cat >$WEB/tmp/nginx.conf <<CONF
user root;
worker_processes 4;
worker_cpu_affinity auto;
pid /run/nginx.pid;
error_log /var/log/nginx/error.log;
events { worker_connections 1024; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 1000000;
	keepalive_timeout 60;
	server {
		listen 127.0.0.1:$PORT_NGINX reuseport backlog=128;
		root /tmp/www;
	}
}
CONF
	chroot $WEB /usr/sbin/nginx -c /tmp/nginx.conf || return 1
	load_checkout_module tcp_listener || return 1
	A=$CFS/bench
	mkdir $A && echo 127.0.0.1 >$A/address && echo $PORT_RUST >$A/port && echo $DOC >$A/root &&
		echo 4 >$A/workers && echo 4096 >$A/max_connections && echo 1 >$A/enable
}

accepted() { awk '$1 == "total" { print $3 }' $CFS/bench/stats; }

# The guest's TCP counters that tell where connections wait: accept queues that overflowed
# (the SYN or the handshake's last ACK dropped), SYNs and other segments sent again after a
# timeout (1 s for a SYN).
TCP_COUNTERS="ListenOverflows ListenDrops TCPSynRetrans TCPTimeouts"
tcp_counters() {
	awk -v want="$TCP_COUNTERS" '/^TcpExt:/ { if (!n) { for (i = 2; i <= NF; i++) k[i] = $i; n = 1 }
		else for (i = 2; i <= NF; i++) v[k[i]] = $i }
		END { c = split(want, w, " "); for (i = 1; i <= c; i++) printf "%d ", v[w[i]] }' /proc/net/netstat
}

# wrk_run SERVER JOB: one wrk run; appends "server job rate p99_ms [connections] [wrk errors]"
# to $OUT (connections: those tcp_listener accepted during the run).
wrk_run() {
	port=$PORT_RUST
	[ "$1" = nginx ] && port=$PORT_NGINX
	before=$(accepted)
	counters=$(tcp_counters)
	url="http://127.0.0.1:$port$(job "$2" 2)"
	# wrk takes a header only as 'Name: value', with the space.
	if [ "$(job "$2" 3)" = close ]; then
		res=$(chroot $WEB /usr/bin/wrk -t4 -c32 -d"${RUNTIME}s" --latency -H "Connection: close" "$url" 2>&1)
	else
		res=$(chroot $WEB /usr/bin/wrk -t4 -c32 -d"${RUNTIME}s" --latency "$url" 2>&1)
	fi
	rate=$(echo "$res" | awk '/^Requests\/sec:/ { print $2 }')
	p99=$(echo "$res" | awk '$1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
		if (u == "us") v /= 1000; else if (u == "s") v *= 1000; print v }')
	errs=$(echo "$res" | awk '/Socket errors|Non-2xx/ { print }' | tr '\n' ' ')
	conns=""
	[ "$1" = tcp_listener ] && conns="$(($(accepted) - before)) connections"
	tcp=$(echo "$TCP_COUNTERS $counters $(tcp_counters)" |
		awk '{ c = NF / 3; for (i = 1; i <= c; i++) if ($(2 * c + i) - $(c + i)) printf "%s %d ", $i, $(2 * c + i) - $(c + i) }')
	echo "$1 $2 ${rate:-0} ${p99:-0} $conns $tcp$errs" >>$OUT
}

if ! setup; then
	echo "tcp_listener bench: setup failed"
	exit 1
fi
: >$OUT
for round in $(seq "$ROUNDS"); do
	for j in $(seq "$NJOBS"); do
		if [ $(((round + j) % 2)) -eq 0 ]; then order="tcp_listener nginx"; else order="nginx tcp_listener"; fi
		for s in $order; do wrk_run "$s" "$j"; done
	done
done
echo "wrk -t4 -c32 -d${RUNTIME}s in the same 4-CPU guest; medians of $ROUNDS alternating rounds (TCG: noisy)."
echo
echo "| workload | tcp_listener | nginx | ratio | p99 ms tcp_listener | p99 ms nginx |"
echo "|---|---|---|---|---|---|"
for j in $(seq "$NJOBS"); do
	r=$(awk -v j="$j" '$1 == "tcp_listener" && $2 == j { print $3 }' $OUT | median)
	n=$(awk -v j="$j" '$1 == "nginx" && $2 == j { print $3 }' $OUT | median)
	rp=$(awk -v j="$j" '$1 == "tcp_listener" && $2 == j { print $4 }' $OUT | median)
	np=$(awk -v j="$j" '$1 == "nginx" && $2 == j { print $4 }' $OUT | median)
	echo "| $(job "$j" 1) | $r | $n | $(ratio "$r" "$n") | $rp | $np |"
done
echo
echo "Runs (server, row, req/s, p99 ms, connections tcp_listener accepted, TCP counters that moved, wrk errors):"
echo
sed 's/^/    /' $OUT
cat $CFS/bench/stats | sed 's/^/    /'
echo 0 >$CFS/bench/enable
rmdir $CFS/bench
kill "$(cat $WEB/run/nginx.pid)" 2>/dev/null
