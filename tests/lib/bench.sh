# Shared by the suites' bench.sh (at /rust44/bench.sh in the guest). POSIX sh (busybox ash).

# bench_median FILE KEY...: of FILE's lines "KEY... ok VALUE MORE..." (one per run), the whole
# line of the run with the median VALUE (the lower middle one of an even count), "|", then every
# run's VALUE in the order run, comma-separated, and " (N failed)" when lines "KEY... failed" say
# so. Prints nothing when no run is ok. BENCH_NOTE="LABEL FIELD" adds " (LABEL <that field>)" to
# each run in the list (e.g. "WA 6").
bench_median() {
	_file=$1
	shift
	awk -v keys="$*" -v note="${BENCH_NOTE:-}" '
	BEGIN { nk = split(keys, key, " "); split(note, nt, " ") }
	{
		for (i = 1; i <= nk; i++)
			if ($i != key[i])
				next
		if ($(nk + 1) == "failed") { failed++; next }
		if ($(nk + 1) != "ok") next
		n++
		value[n] = $(nk + 2) + 0
		line[n] = $0
		shown = $(nk + 2)
		if (nt[2] != "") shown = shown " (" nt[1] " " $(nt[2]) ")"
		all = (n == 1) ? shown : all ", " shown
	}
	END {
		if (!n) exit
		for (i = 1; i <= n; i++) order[i] = i
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && value[order[j - 1]] > value[order[j]]; j--) {
				t = order[j]; order[j] = order[j - 1]; order[j - 1] = t
			}
		if (failed) all = all " (" failed " failed)"
		print line[order[int((n + 1) / 2)]] "|" all
	}' "$_file"
}
