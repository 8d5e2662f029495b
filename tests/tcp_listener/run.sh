# tcp_listener: the in-kernel HTTP server on per-CPU SO_REUSEPORT listeners, made in configfs.
# First the tree's own SO_INCOMING_CPU and SO_REUSEPORT selftests (the kernel behaviour the server
# relies on, in this boot). A small raw client (httpc.c) fetches files, heads, ranges, conditional
# GETs and errors; then traversal and malformed requests, limits, keep-alive, bodies sent from the
# page cache, TCP keep-alive, slow readers (sends wait for sk_write_space, not in a worker), an
# instance in another network namespace, IPv6, clients pinned to each CPU (accepted on that CPU:
# 0 mismatches), CPU hotplug (a listener goes and comes with its CPU), a SYN flood (synflood.c)
# with syncookies, many clients at once, the connection limit, the timeout, and stops with
# connections open and under load.
. /rust44/ktap.sh
cd /rust44/tests/tcp_listener || exit 1

CFS=/sys/kernel/config/tcp_listener
A=$CFS/a
PORT=8080
DOC=/tmp/www
HTTPC=./httpc

# get TARGET [HEADER...]: a GET with Connection: close; the whole response on stdout.
get() {
	target=$1
	shift
	{
		printf 'GET %s HTTP/1.1\r\nHost: t\r\n' "$target"
		for h in "$@"; do printf '%s\r\n' "$h"; done
		printf 'Connection: close\r\n\r\n'
	} | $HTTPC 127.0.0.1 $PORT
}

# status_of: the status code of the response on stdin.
status_of() {
	head -n1 | cut -d' ' -f2
}

# header NAME: the value of a response header on stdin.
header() {
	tr -d '\r' | sed -n "s/^$1: //p" | head -n1
}

# expect_status WHAT WANTED CMD...: CMD's response has status WANTED.
expect_status() {
	what=$1 want=$2
	shift 2
	got=$("$@" | status_of)
	expect_eq "$what" "$got" "$want"
}

# stat_field CPU FIELD: a counter of the 'a' instance (CPU 'total' for the totals).
stat_field() {
	awk -v c="$1" -v f="$2" '$1 == c { for (i = 2; i < NF; i += 2) if ($i == f) print $(i + 1) }' "$A/stats"
}

setup() {
	ip link set lo up || return 1
	mkdir -p $DOC/sub /tmp/outside || return 1
	dd if=/dev/urandom of=$DOC/big bs=1024 count=300 2>/dev/null || return 1
	printf 'hello\n' >$DOC/sub/hello.txt
	printf 'secret\n' >/tmp/outside/secret
	ln -s /tmp/outside/secret $DOC/abs_link
	ln -s ../../outside/secret $DOC/sub/rel_link
	ln -s hello.txt $DOC/sub/inside_link
	mkfifo $DOC/fifo
	load_checkout_module tcp_listener || return 1
	[ -d "$CFS" ] || { echo "no $CFS"; return 1; }
	mkdir $A
}

# refused ATTR VALUE MESSAGE: writing VALUE fails with EINVAL and the kernel log says MESSAGE.
refused() {
	out=$(echo "$2" 2>&1 >"$A/$1")
	rc=$?
	[ $rc -ne 0 ] || { echo "$1=$2 was accepted"; return 1; }
	case "$out" in *"Invalid argument"*) ;; *) echo "$1=$2: '$out', want EINVAL"; return 1 ;; esac
	dmesg | tail -n 5 | grep -qF "$3" || { echo "no '$3' in the kernel log:"; dmesg | tail -n 5; return 1; }
}

configfs_errors() {
	refused port 0 "a: port: '0' is not a number from 1 to 65535" || return 1
	refused port 65536 "a: port: '65536' is not a number" || return 1
	refused port 80x "a: port: '80x' is not a number" || return 1
	refused address 1.2.3 "a: address: '1.2.3' is not an IPv4 or IPv6 address" || return 1
	refused address 1:2:3 "a: address: '1:2:3' is not" || return 1
	refused address 256.1.1.1 "a: address: '256.1.1.1' is not" || return 1
	refused root relative/dir "a: root: 'relative/dir' is not an absolute path" || return 1
	refused root /tmp/../tmp "a: root: '/tmp/../tmp' is not an absolute path" || return 1
	refused root /nonexistent "a: root: '/nonexistent' is not a directory that can be opened" || return 1
	refused root $DOC/big "a: root: '$DOC/big' is not a directory" || return 1
	refused workers 0 "a: workers: '0' is not a number from 1 to 64" || return 1
	refused enable 2 "a: enable: '2' is not 0 or 1" || return 1
	refused enable 1 "a: enable: no port set" || return 1
	echo $PORT >$A/port || return 1
	refused enable 1 "a: enable: no document root set" || return 1
	echo ::1 >$A/address && expect_file_eq $A/address 0:0:0:0:0:0:0:1
}

# The valid configuration is set here, so a failure above leaves nothing half-configured.
enable() {
	# A 30 s timeout: a client that reads slowly counts as silent between two times its socket
	# asks for more (sk_write_space, half a send buffer), which takes long on a loaded debug guest.
	echo $PORT >$A/port && echo 127.0.0.1 >$A/address && echo $DOC >$A/root && echo 2 >$A/workers &&
		echo 30000 >$A/timeout_ms || return 1
	expect_file_eq $A/address 127.0.0.1 || return 1
	expect_file_eq $A/root $DOC || return 1
	expect_file_eq $A/stats disabled || return 1
	echo 1 >$A/enable || return 1
	expect_file_eq $A/enable 1 || return 1
	cpus=$(grep -c ^processor /proc/cpuinfo)
	expect_eq "cpu lines in stats" "$(grep -c '^cpu' $A/stats)" "$cpus" || return 1
	# Parameters are fixed while enabled.
	if echo 9 >$A/port 2>/dev/null; then echo "port changed while enabled"; return 1; fi
	dmesg | tail -n 2 | grep -qF "a: port cannot change while the instance is enabled" || return 1
}

get_file() {
	resp=$(get /big | head -c 400)
	expect_eq status "$(echo "$resp" | status_of)" 200 || return 1
	expect_eq Content-Length "$(echo "$resp" | header Content-Length)" 307200 || return 1
	printf 'GET /big HTTP/1.0\r\n\r\n' | $HTTPC -b 127.0.0.1 $PORT >/tmp/big.got || return 1
	cmp /tmp/big.got $DOC/big || return 1
	expect_eq body "$(printf 'GET /sub/hello.txt HTTP/1.0\r\n\r\n' | $HTTPC -b 127.0.0.1 $PORT)" hello
}

head_request() {
	resp=$(printf 'HEAD /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n' | $HTTPC 127.0.0.1 $PORT)
	expect_eq status "$(echo "$resp" | status_of)" 200 || return 1
	expect_eq Content-Length "$(echo "$resp" | header Content-Length)" 307200 || return 1
	# The head and nothing else.
	expect_eq "bytes after the head" "$(printf 'HEAD /big HTTP/1.0\r\n\r\n' | $HTTPC -b 127.0.0.1 $PORT | wc -c)" 0
}

ranges() {
	resp=$(get /big "Range: bytes=1000-1999" | head -c 400)
	expect_eq status "$(echo "$resp" | status_of)" 206 || return 1
	expect_eq Content-Range "$(echo "$resp" | header Content-Range)" "bytes 1000-1999/307200" || return 1
	printf 'GET /big HTTP/1.0\r\nRange: bytes=1000-1999\r\n\r\n' | $HTTPC -b 127.0.0.1 $PORT >/tmp/range.got || return 1
	dd if=$DOC/big of=/tmp/range.want bs=1000 skip=1 count=1 2>/dev/null
	cmp /tmp/range.got /tmp/range.want || return 1
	expect_eq "suffix range" "$(printf 'GET /sub/hello.txt HTTP/1.0\r\nRange: bytes=-3\r\n\r\n' | $HTTPC -b 127.0.0.1 $PORT)" lo || return 1
	resp=$(get /big "Range: bytes=307200-")
	expect_eq status "$(echo "$resp" | status_of)" 416 || return 1
	expect_eq Content-Range "$(echo "$resp" | header Content-Range)" "bytes */307200"
}

if_modified_since() {
	lm=$(get /sub/hello.txt | header Last-Modified)
	[ -n "$lm" ] || { echo "no Last-Modified"; return 1; }
	expect_status "same date" 304 get /sub/hello.txt "If-Modified-Since: $lm" || return 1
	expect_status "older date" 200 get /sub/hello.txt "If-Modified-Since: Thu, 01 Jan 1970 00:00:01 GMT" || return 1
	touch -d '2030-01-01 00:00:00' $DOC/sub/hello.txt
	expect_status "after the file changed" 200 get /sub/hello.txt "If-Modified-Since: $lm"
}

errors() {
	expect_status "missing file" 404 get /nothing || return 1
	expect_status "missing dir" 404 get /nodir/x || return 1
	expect_status "directory" 403 get /sub || return 1
	expect_status "fifo" 403 get /fifo || return 1
	expect_status POST 405 sh -c "printf 'POST /big HTTP/1.1\r\nHost: t\r\n\r\n' | $HTTPC 127.0.0.1 $PORT" || return 1
	expect_status garbage 400 sh -c "printf '\x01\x02garbage\r\n\r\n' | $HTTPC 127.0.0.1 $PORT" || return 1
	expect_status "no Host" 400 sh -c "printf 'GET /big HTTP/1.1\r\n\r\n' | $HTTPC 127.0.0.1 $PORT" || return 1
	expect_status "HTTP/2.0" 505 sh -c "printf 'GET /big HTTP/2.0\r\n\r\n' | $HTTPC 127.0.0.1 $PORT"
}

traversal() {
	expect_status ".." 403 get /../tmp/outside/secret || return 1
	expect_status "sub/../.." 403 get /sub/../../tmp/outside/secret || return 1
	expect_status "%2e%2e" 403 get /%2e%2e/tmp/outside/secret || return 1
	expect_status "..%2f" 403 get /sub/..%2f..%2ftmp/outside/secret || return 1
	expect_status "absolute symlink out" 403 get /abs_link || return 1
	expect_status "relative symlink out" 403 get /sub/rel_link || return 1
	expect_status "symlink inside" 200 get /sub/inside_link || return 1
	expect_status "%00" 400 get /sub/hello.txt%00 || return 1
	# None of the refused requests showed the secret.
	for t in /../tmp/outside/secret /abs_link /sub/rel_link; do
		if get "$t" | grep -q secret; then echo "$t showed the file outside the root"; return 1; fi
	done
}

limits() {
	long=$(head -c 2100 /dev/zero | tr '\0' a)
	expect_status "2100-byte target" 414 get "/$long" || return 1
	expect_status "4000-byte path" 414 get "/$(head -c 4000 /dev/zero | tr '\0' a)" || return 1
	resp=$(printf 'GET /big HTTP/1.1\r\nHost: t\r\n%s\r\n\r\n' "$(seq 70 | sed 's/.*/X-h&: v\r/')" | $HTTPC 127.0.0.1 $PORT)
	expect_eq "70 headers" "$(echo "$resp" | status_of)" 431 || return 1
	big=$(head -c 9000 /dev/zero | tr '\0' b)
	expect_status "a 9000-byte header" 431 get /big "X-Big: $big"
}

keep_alive() {
	before=$(stat_field total accepted)
	resp=$(printf 'GET /sub/hello.txt HTTP/1.1\r\nHost: t\r\n\r\nHEAD /big HTTP/1.1\r\nHost: t\r\n\r\nGET /sub/hello.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n' | $HTTPC -k 127.0.0.1 $PORT)
	expect_eq "responses on one connection" "$(echo "$resp" | grep -c '^HTTP/1.1 200 OK')" 3 || return 1
	expect_eq "keep-alive responses" "$(echo "$resp" | grep -c '^Connection: keep-alive')" 2 || return 1
	expect_eq "connections accepted" "$(($(stat_field total accepted) - before))" 1
}

per_cpu() {
	cpus=$(grep -c ^processor /proc/cpuinfo)
	[ "$cpus" -ge 2 ] || { echo "only $cpus CPUs"; return 1; }
	# Unpinned clients of earlier tests may move between connecting and sending: count from here.
	other=$(stat_field total other_cpu)
	cpu=0
	while [ $cpu -lt "$cpus" ]; do
		before=$(stat_field cpu$cpu accepted)
		printf 'GET /sub/hello.txt HTTP/1.0\r\n\r\n' | taskset -c $cpu $HTTPC -n 10 127.0.0.1 $PORT >/dev/null || return 1
		expect_eq "accepted on cpu$cpu by clients on cpu$cpu" "$(($(stat_field cpu$cpu accepted) - before))" 10 || return 1
		cpu=$((cpu + 1))
	done
	cat $A/stats
	expect_eq "connections on another CPU" "$(($(stat_field total other_cpu) - other))" 0
}

# A second instance: several may run; its connection limit and timeout.
second_instance() {
	B=$CFS/b
	mkdir $B && echo 8081 >$B/port && echo $DOC >$B/root && echo 2 >$B/workers || return 1
	echo 1 >$B/max_connections && echo 1500 >$B/timeout_ms && echo 1 >$B/enable || return 1
	# An idle connection on CPU 0 takes the one allowed; the next one there gets 503.
	taskset -c 0 $HTTPC -s 1000 127.0.0.1 8081 </dev/null >/dev/null &
	idle=$!
	sleep 0.3
	resp=$(printf 'GET /sub/hello.txt HTTP/1.0\r\n\r\n' | taskset -c 0 $HTTPC 127.0.0.1 8081)
	expect_eq "over the limit" "$(echo "$resp" | status_of)" 503 || return 1
	wait $idle
	expect_eq "refused" "$(awk '$1 == "total" { print $13 }' $B/stats)" 1 || return 1
	# A silent client is dropped after the timeout (1500 ms), not after the client gives up.
	start=$(ktap_uptime_ms)
	timeout 5 $HTTPC -k 127.0.0.1 8081 </dev/null >/dev/null || { echo "the server did not close a silent connection"; return 1; }
	took=$(($(ktap_uptime_ms) - start))
	[ $took -ge 1400 ] || { echo "closed after $took ms, before the timeout"; return 1; }
	# 'a' serves meanwhile.
	expect_status "instance a" 200 get /sub/hello.txt
}

# Another instance on the address and port of 'a' (127.0.0.1), or on a wildcard that covers
# it, is refused with EADDRINUSE and a message naming 'a' (as SO_REUSEPORT listeners it would
# otherwise take a share of a's connections); on another port it starts.
same_port_refused() {
	C=$CFS/c
	mkdir $C && echo $PORT >$C/port && echo $DOC >$C/root || return 1
	for addr in 127.0.0.1 0.0.0.0 ::; do
		echo $addr >$C/address || return 1
		if out=$(echo 1 2>&1 >$C/enable); then
			echo "enabled on $addr port $PORT beside a"
			return 1
		fi
		case "$out" in *"in use"*) ;; *) echo "$addr: '$out', want EADDRINUSE"; return 1 ;; esac
		dmesg | tail -n 3 | grep -qF "c: enable: $(cat $C/address) port $PORT is served by instance a already" ||
			{ echo "no refusal naming a in the kernel log:"; dmesg | tail -n 3; return 1; }
	done
	expect_file_eq $C/enable 0 || return 1
	echo ::1 >$C/address && echo 1 >$C/enable || { echo "::1 is not 127.0.0.1, yet refused"; return 1; }
	echo 0 >$C/enable && echo 127.0.0.1 >$C/address && echo $((PORT + 2)) >$C/port || return 1
	echo 1 >$C/enable || { echo "refused on another port"; return 1; }
	echo 0 >$C/enable && rmdir $C || return 1
	expect_status "instance a" 200 get /sub/hello.txt
}

enable_cycle() {
	for i in 1 2 3; do
		echo 0 >$A/enable || return 1
		if printf 'GET / HTTP/1.0\r\n\r\n' | $HTTPC 127.0.0.1 $PORT >/dev/null 2>&1; then
			echo "connected to a disabled instance"
			return 1
		fi
		echo 1 >$A/enable || return 1
		expect_status "after enable $i" 200 get /sub/hello.txt || return 1
	done
}

# Connections open on every CPU: rmmod is refused while instances exist; disabling closes them
# at once; rmdir of an enabled instance stops it.
stop_with_connections() {
	pids=""
	cpus=$(grep -c ^processor /proc/cpuinfo)
	for cpu in $(seq 0 $((cpus - 1))); do
		taskset -c $cpu $HTTPC -k 127.0.0.1 $PORT </dev/null >/dev/null &
		pids="$pids $!"
	done
	sleep 0.5
	expect_eq active "$(awk '$1 == "active" { print $2 }' $A/stats)" "$cpus" || return 1
	if rmmod tcp_listener 2>/dev/null; then echo "rmmod succeeded with instances"; return 1; fi
	expect_status "still serving" 200 get /sub/hello.txt || return 1
	start=$(ktap_uptime_ms)
	echo 0 >$A/enable || return 1
	for p in $pids; do wait "$p" || { echo "client $p did not see its connection closed"; return 1; }; done
	took=$(($(ktap_uptime_ms) - start))
	[ $took -lt 5000 ] || { echo "disable took $took ms"; return 1; }
	echo 1 >$A/enable || return 1
	taskset -c 1 $HTTPC -k 127.0.0.1 $PORT </dev/null >/dev/null &
	p=$!
	sleep 0.3
	rmdir $A || return 1
	wait $p || { echo "the client of a removed instance did not see its connection closed"; return 1; }
	rmdir $CFS/b || return 1
	rmmod tcp_listener || return 1
	[ ! -d $CFS ] || { echo "$CFS is still there"; return 1; }
}

# The tree's selftests, unmodified (built by build.sh): what SO_INCOMING_CPU and SO_REUSEPORT
# promise in this kernel, before the server is held to it. Each runs in a network namespace of
# its own, as written (reuseport_addr_any through unshare, as the tree's in_netns.sh does), so
# the sysctls they set stay there.
upstream_baseline() {
	ip link set lo up || return 1
	range=$(cat /proc/sys/net/ipv4/ip_local_port_range)
	for t in so_incoming_cpu reuseport_bpf_cpu reuseport_dualstack reuseport_bpf reuseport_addr_any; do
		if [ $t = reuseport_addr_any ]; then
			out=$(unshare -n sh -c "ip link set lo up && ./$t" 2>&1)
		else
			out=$(./$t 2>&1)
		fi || { echo "$out" | tail -n 20; echo "$t failed"; return 1; }
		echo "$t: $(echo "$out" | grep -E '^# (PASSED|Totals)|SUCCESS' | tr '\n' ' ')"
	done
	expect_eq "ip_local_port_range here" "$(cat /proc/sys/net/ipv4/ip_local_port_range)" "$range"
}

# Bodies go out as page-cache pages (MSG_SPLICE_PAGES): every body byte counts as spliced, and
# what arrives is the file (a range too, from an offset inside a page).
spliced_bodies() {
	before=$(stat_field total spliced)
	printf 'GET /big HTTP/1.0

' | $HTTPC -b 127.0.0.1 $PORT >/tmp/big.got || return 1
	cmp /tmp/big.got $DOC/big || return 1
	printf 'GET /big HTTP/1.0
Range: bytes=4000-200000

' | $HTTPC -b 127.0.0.1 $PORT >/tmp/range.got || return 1
	dd if=$DOC/big bs=1 skip=4000 count=196001 2>/dev/null >/tmp/range.want
	cmp /tmp/range.got /tmp/range.want || return 1
	expect_eq "spliced bytes" "$(($(stat_field total spliced) - before))" $((307200 + 196001))
}

# An instance on ::1 serves as the IPv4 one does.
ipv6() {
	V=$CFS/v6
	mkdir $V && echo ::1 >$V/address && echo 8086 >$V/port && echo $DOC >$V/root && echo 1 >$V/enable || return 1
	expect_eq "body over IPv6" "$(printf 'GET /sub/hello.txt HTTP/1.0

' | $HTTPC -b ::1 8086)" hello || return 1
	printf 'GET /big HTTP/1.0

' | $HTTPC -b ::1 8086 >/tmp/big6.got || return 1
	cmp /tmp/big6.got $DOC/big || return 1
	if printf 'GET / HTTP/1.0

' | $HTTPC 127.0.0.1 8086 >/dev/null 2>&1; then
		echo "the ::1 instance answered on 127.0.0.1"
		return 1
	fi
	echo 0 >$V/enable && rmdir $V
}

# A CPU taken offline takes its listener (its stats line goes) while a connection it accepted
# is served on; brought back, it gets a listener again and serves its own clients.
hotplug() {
	cpus=$(grep -c ^processor /proc/cpuinfo)
	last=$((cpus - 1))
	online=/sys/devices/system/cpu/cpu$last/online
	[ -w $online ] || { echo "cpu$last cannot go offline"; return 1; }
	hotplug_steps
	rc=$?
	# The CPU comes back whatever failed: the tests after this one pin clients to it.
	[ "$(cat $online)" = 1 ] || echo 1 >$online
	return $rc
}

hotplug_steps() {
	# Accepted on the last CPU; it asks for its file after that CPU is gone.
	printf 'GET /sub/hello.txt HTTP/1.0

' | taskset -c $last $HTTPC -b -s 1500 127.0.0.1 $PORT >/tmp/hp.got &
	client=$!
	sleep 0.5
	echo 0 >$online || return 1
	expect_eq "cpu lines with cpu$last offline" "$(grep -c '^cpu' $A/stats)" $last || return 1
	if grep -q "^cpu$last " $A/stats; then echo "cpu$last still has a listener"; return 1; fi
	wait $client || { echo "the connection of the offline CPU was not served"; return 1; }
	expect_eq "body after its CPU went" "$(cat /tmp/hp.got)" hello || return 1
	other=$(stat_field total other_cpu)
	cpu=0
	while [ $cpu -lt $last ]; do
		printf 'GET /sub/hello.txt HTTP/1.0

' | taskset -c $cpu $HTTPC -n 5 127.0.0.1 $PORT >/dev/null || return 1
		cpu=$((cpu + 1))
	done
	expect_eq "served elsewhere while cpu$last is offline" "$(($(stat_field total other_cpu) - other))" 0 || return 1
	echo 1 >$online || return 1
	expect_eq "cpu lines with cpu$last back" "$(grep -c '^cpu' $A/stats)" $cpus || return 1
	before=$(stat_field cpu$last accepted)
	other=$(stat_field total other_cpu)
	printf 'GET /sub/hello.txt HTTP/1.0

' | taskset -c $last $HTTPC -n 10 127.0.0.1 $PORT >/dev/null || return 1
	expect_eq "accepted on cpu$last once back" "$(($(stat_field cpu$last accepted) - before))" 10 || return 1
	expect_eq "on another CPU" "$(($(stat_field total other_cpu) - other))" 0
}

# Spoofed SYNs (from 10.99/16, never answered) flood the port from CPU 1, whose listener they
# reach: syncookies take over once its SYN queue is full, and clients on that CPU are served
# all along. The SYN-ACKs to 10.99/16 go out through lo to be dropped (a route makes the
# listener queue the requests; with none it drops the SYNs at once).
syn_flood() {
	[ -e /proc/sys/net/ipv4/tcp_syncookies ] || { echo "no syncookies in this kernel (CONFIG_SYN_COOKIES)"; return 1; }
	echo 1 >/proc/sys/net/ipv4/tcp_syncookies || return 1
	ip route add 10.99.0.0/16 dev lo 2>/dev/null
	ip route show | grep -q '^10.99.0.0/16' || { echo "no route for the flood's sources"; return 1; }
	cookies() { awk '/^TcpExt:/ { if (!n) { for (i = 1; i <= NF; i++) if ($i == "SyncookiesSent") c = i; n = 1 } else print $c }' /proc/net/netstat; }
	before=$(cookies)
	taskset -c 1 ./synflood 127.0.0.1 $PORT 4 >/tmp/flood.out &
	flood=$!
	sleep 1
	printf 'GET /sub/hello.txt HTTP/1.0

' | taskset -c 1 $HTTPC -n 20 127.0.0.1 $PORT >/tmp/flood.got ||
		{ echo "a client was not served during the flood"; kill $flood; return 1; }
	expect_eq "served during the flood" "$(tail -c 6 /tmp/flood.got)" hello || { kill $flood; return 1; }
	wait $flood || return 1
	echo "sent $(cat /tmp/flood.out) SYNs; syncookies sent: $(($(cookies) - before))"
	[ "$(cookies)" -gt "$before" ] || { echo "the flood never filled the SYN queue (no syncookies)"; return 1; }
	expect_status "after the flood" 200 get /sub/hello.txt
}

# 48 clients at once, each making 5 connections for the 300 KiB file: all served, none left.
many_clients() {
	before=$(stat_field total accepted)
	pids=""
	for i in $(seq 48); do
		printf 'GET /big HTTP/1.0

' | taskset -c $((i % 4)) $HTTPC -b -n 5 127.0.0.1 $PORT >/tmp/mc.$i &
		pids="$pids $!"
	done
	for p in $pids; do wait "$p" || { echo "client $p failed"; return 1; }; done
	for i in $(seq 48); do cmp -s /tmp/mc.$i $DOC/big || { echo "client $i got a wrong body"; return 1; }; done
	rm -f /tmp/mc.*
	expect_eq "accepted" "$(($(stat_field total accepted) - before))" 240 || return 1
	sleep 0.2
	expect_eq "active after" "$(awk '$1 == "active" { print $2 }' $A/stats)" 0
}

# Disabling while 16 clients fetch in a loop: the stop finishes at once, every client ends,
# and the instance starts again and serves.
stop_under_load() {
	pids=""
	for i in $(seq 16); do
		printf 'GET /big HTTP/1.0

' | taskset -c $((i % 4)) $HTTPC -n 1000 127.0.0.1 $PORT >/dev/null 2>&1 &
		pids="$pids $!"
	done
	sleep 1
	start=$(ktap_uptime_ms)
	echo 0 >$A/enable || return 1
	took=$(($(ktap_uptime_ms) - start))
	for p in $pids; do wait "$p"; done
	[ $took -lt 5000 ] || { echo "disable under load took $took ms"; return 1; }
	echo 1 >$A/enable || return 1
	expect_status "after the stop under load" 200 get /sub/hello.txt
}

# A connection of the server probes a silent client (TCP keep-alive, inherited from its
# listener): its /proc/net/tcp line shows the keep-alive timer (02), due in at most 60 s.
keepalive() {
	taskset -c 2 $HTTPC -s 1500 127.0.0.1 $PORT </dev/null >/dev/null &
	client=$!
	sleep 0.5
	# The server's side: local 127.0.0.1:8080 (0100007F:1F90), established (01).
	line=$(awk '$2 == "0100007F:1F90" && $4 == "01" { print $6 }' /proc/net/tcp | head -n1)
	wait $client
	[ -n "$line" ] || { echo "no established connection of the server"; cat /proc/net/tcp; return 1; }
	expect_eq "timer of the idle connection" "${line%%:*}" 02 || return 1
	# Clock ticks (USER_HZ, 100 a second) until the first probe.
	when=$(printf '%d' "0x${line#*:}")
	[ "$when" -gt 5000 ] && [ "$when" -le 6000 ] || { echo "keep-alive due in $when ticks, want 50-60 s"; return 1; }
}

# Sends do not wait: a client that does not read its 512 KiB (in segments of 1400 bytes, so the
# server's send buffer holds less) leaves the rest queued in the server, which goes on with it
# when the socket has room again (sk_write_space). Three such clients on one CPU, more than its
# workers (2), do not hold back a fourth.
slow_readers() {
	head -c 524288 /dev/urandom >$DOC/slow
	waits=$(stat_field total waits)
	pids=""
	for i in 1 2 3; do
		printf 'GET /slow HTTP/1.0\r\n\r\n' | taskset -c 1 $HTTPC -b -m 1400 -r 3000 127.0.0.1 $PORT >/tmp/slow.$i &
		pids="$pids $!"
	done
	sleep 0.5
	start=$(ktap_uptime_ms)
	body=$(printf 'GET /sub/hello.txt HTTP/1.0\r\n\r\n' | taskset -c 1 $HTTPC -b 127.0.0.1 $PORT)
	took=$(($(ktap_uptime_ms) - start))
	expect_eq "body beside the slow readers" "$body" hello || return 1
	[ $took -lt 2000 ] || { echo "served after $took ms: the slow readers held the workers"; return 1; }
	for p in $pids; do wait "$p" || { echo "slow reader $p failed"; return 1; }; done
	for i in 1 2 3; do cmp -s /tmp/slow.$i $DOC/slow || { echo "slow reader $i got a wrong body"; return 1; }; done
	rm -f /tmp/slow.* $DOC/slow
	[ "$(stat_field total waits)" -gt "$waits" ] || { echo "no send waited for room"; return 1; }
}

# An instance made inside another network namespace listens there only, whichever namespace
# enables it later; one on the same port in the initial namespace starts beside it.
netns() {
	unshare -n sh -c 'ip link set lo up && exec sleep 60' &
	holder=$!
	sleep 0.3
	netns_steps
	rc=$?
	kill $holder
	[ ! -d $CFS/ns ] || { echo 0 >$CFS/ns/enable; rmdir $CFS/ns; }
	[ ! -d $CFS/here ] || { echo 0 >$CFS/here/enable; rmdir $CFS/here; }
	return $rc
}

netns_steps() {
	inns() { nsenter -t $holder -n "$@"; }
	req='GET /sub/hello.txt HTTP/1.0\r\n\r\n'
	inns sh -c "mkdir $CFS/ns && echo 8090 >$CFS/ns/port && echo 127.0.0.1 >$CFS/ns/address &&
		echo $DOC >$CFS/ns/root && echo 1 >$CFS/ns/enable" || return 1
	expect_eq "body in the namespace" "$(printf "$req" | inns $HTTPC -b 127.0.0.1 8090)" hello || return 1
	if printf "$req" | $HTTPC 127.0.0.1 8090 >/dev/null 2>&1; then
		echo "the instance of another namespace answered in this one"
		return 1
	fi
	# Enabled again from here, it is still the creator's namespace it listens in.
	echo 0 >$CFS/ns/enable && echo 1 >$CFS/ns/enable || return 1
	expect_eq "body in the namespace after enable" "$(printf "$req" | inns $HTTPC -b 127.0.0.1 8090)" hello || return 1
	# Ports are claimed per namespace.
	mkdir $CFS/here && echo 8090 >$CFS/here/port && echo 127.0.0.1 >$CFS/here/address &&
		echo $DOC >$CFS/here/root && echo 1 >$CFS/here/enable || { echo "port 8090 refused here"; return 1; }
	expect_eq "body here" "$(printf "$req" | $HTTPC -b 127.0.0.1 8090)" hello || return 1
	expect_eq "accepted there since enabled" "$(awk '$1 == "total" { print $3 }' $CFS/ns/stats)" 1 || return 1
	expect_eq "accepted here" "$(awk '$1 == "total" { print $3 }' $CFS/here/stats)" 1
}

ktap_begin
ktap_test upstream_baseline upstream_baseline
ktap_test setup setup
ktap_test configfs_errors configfs_errors
ktap_test enable enable
ktap_test get_file get_file
ktap_test head_request head_request
ktap_test ranges ranges
ktap_test if_modified_since if_modified_since
ktap_test errors errors
ktap_test traversal traversal
ktap_test limits limits
ktap_test keep_alive keep_alive
ktap_test spliced_bodies spliced_bodies
ktap_test keepalive keepalive
ktap_test slow_readers slow_readers
ktap_test netns netns
ktap_test ipv6 ipv6
ktap_test per_cpu per_cpu
ktap_test hotplug hotplug
ktap_test syn_flood syn_flood
ktap_test many_clients many_clients
ktap_test stop_under_load stop_under_load
ktap_test second_instance second_instance
ktap_test same_port_refused same_port_refused
ktap_test enable_cycle enable_cycle
ktap_test stop_with_connections stop_with_connections
ktap_end
