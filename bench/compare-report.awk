# compare-report.awk: turns bench/compare.sh's raw RESULT lines into RESULTS.md (on stdout) and
# the gnuplot data and scripts for the charts (in `work`). POSIX awk (mawk is enough).
#
# Input: the raw lines, of the form
#   round=<r> workers=<w|all> RESULT name=<n> impl=<i> metric=<m> value=<v> unit=<u>
# Variables: metaf (a file of "key value" lines), versionsf (toolchain lines), notesf (notes of
# failures and missing peers), out (where the SVGs go), work (where chart data and scripts go).
#
# Orientation: a ratio is libactor's performance over the peer's, so >1 always means libactor
# did better: value_libactor / value_peer for rates (units per second: 1/s, MiB/s),
# value_peer / value_libactor for times and sizes (ms, B), where less is better.
#
# Baseline: a row's libactor value is impl=libactor's; the file benchmarks report one impl per
# reactor backend instead (libactor-io_uring, libactor-epoll), and there the backend that
# libactor's `auto` chooses is the baseline: io_uring where the machine gave it, else epoll
# (base_of). The other backend is then a column like a peer's.

function better_higher(unit) { return unit ~ /\/s$/ }

function group_of(name) {
	if (name ~ /_noisy$/)
		return "noisy"
	if (name ~ /^(pingpong|counting|threadring|chameneos|big$|fork_join_throughput)/)
		return "messaging"
	if (name ~ /^(skynet|spawn_idle|fork_join_create)/)
		return "spawning"
	if (name ~ /^(echo|chat)/)
		return "network"
	if (name ~ /^(blocking_|file_)/)
		return "files"
	return "other"
}

# What a group is called in a table's first column.
function group_title(g) {
	return g == "noisy" ? "busy neighbour" : g == "files" ? "blocking and files" : g
}

# Three significant digits, with k/M/G for rates; "ms" and "B" as they are.
function sig3(x) {
	if (x >= 100 || x == int(x) && x >= 10)
		return sprintf("%.0f", x)
	if (x >= 10)
		return sprintf("%.1f", x)
	if (x >= 1)
		return sprintf("%.2f", x)
	return sprintf("%.3g", x)
}
function human(v, unit) {
	if (unit == "1/s") {
		if (v >= 999500000) return sig3(v / 1e9) "G"
		if (v >= 999500) return sig3(v / 1e6) "M"
		if (v >= 999.5) return sig3(v / 1e3) "k"
		return sig3(v)
	}
	return sig3(v)
}
function unit_words(unit) {
	if (unit == "1/s") return "per second, higher is better"
	if (unit == "ms") return "milliseconds, lower is better"
	if (unit == "B") return "bytes, lower is better"
	if (unit == "us") return "microseconds, lower is better"
	return unit
}

# Sorts the n values in list (1..n) ascending: insertion sort, the lists are short.
function sort_list(list, n,    i, j, t) {
	for (i = 2; i <= n; i++) {
		t = list[i]
		for (j = i - 1; j >= 1 && list[j] > t; j--)
			list[j + 1] = list[j]
		list[j + 1] = t
	}
}

# Fills med, lo, hi (globals) from the values of key k in arrays cnt/val; returns the count.
function stats(k,    n, i, l) {
	n = cnt[k] + 0
	if (n == 0)
		return 0
	for (i = 1; i <= n; i++)
		l[i] = val[k, i]
	sort_list(l, n)
	lo = l[1]
	hi = l[n]
	med = (n % 2) ? l[(n + 1) / 2] : (l[n / 2] + l[n / 2 + 1]) / 2
	return n
}

# The implementation a row's ratios are taken against: libactor, else the backend `auto` would
# choose (see the top of this file).
function base_of(row) {
	if (cnt[row SUBSEP "libactor" SUBSEP "all"] + 0 > 0)
		return "libactor"
	if (cnt[row SUBSEP "libactor-io_uring" SUBSEP "all"] + 0 > 0)
		return "libactor-io_uring"
	if (cnt[row SUBSEP "libactor-epoll" SUBSEP "all"] + 0 > 0)
		return "libactor-epoll"
	return "libactor"
}

# 1 if `impl` is the baseline of some row of group g: it is then the libactor column, not a
# column of its own.
function is_base(g, impl,    i) {
	if (impl == "libactor")
		return 1
	for (i = 1; i <= nrows[g]; i++)
		if (base_of(rows[g, i]) == impl)
			return 1
	return 0
}

# 1 if an implementation other than the row's baseline has main-run values for this row.
function has_peer(row,    j, base) {
	base = base_of(row)
	for (j = 1; j <= nimpls; j++)
		if (impls[j] != base && cnt[row SUBSEP impls[j] SUBSEP "all"] + 0 > 0)
			return 1
	return 0
}

# 1 if `impl` has main-run values for some row of group g: a group's tables and chart show
# only the implementations it has (the network group has servers the others do not).
function in_group(g, impl,    i) {
	for (i = 1; i <= nrows[g]; i++)
		if (cnt[rows[g, i] SUBSEP impl SUBSEP "all"] + 0 > 0)
			return 1
	return 0
}

function ratio(lib, peer, unit) {
	if (lib <= 0 || peer <= 0)
		return ""
	return better_higher(unit) ? lib / peer : peer / lib
}

# Two significant digits below 0.1, so that 0.0055× does not print as 0.01× (or 0.00×).
function fmt_ratio(r) {
	if (r == "")
		return "—"
	return sprintf(r >= 10 ? "%.1f×" : r >= 0.1 ? "%.2f×" : "%.2g×", r)
}

# The quiet row of a noisy one: the same name without `_noisy`, the same metric.
function quiet_row(row,    p, name) {
	split(row, p, SUBSEP)
	name = p[1]
	sub(/_noisy$/, "", name)
	return name SUBSEP p[2]
}

BEGIN {
	while ((getline line < metaf) > 0) {
		k = line
		sub(/ .*/, "", k)
		v = substr(line, length(k) + 2)
		meta[k] = v
	}
	while ((getline line < versionsf) > 0)
		versions[++nversions] = line
	while ((getline line < notesf) > 0)
		notes[++nnotes] = line
}

# The raw RESULT lines.
{
	delete f
	for (i = 1; i <= NF; i++) {
		eq = index($i, "=")
		if (eq > 0)
			f[substr($i, 1, eq - 1)] = substr($i, eq + 1)
	}
	if (!("name" in f) || !("impl" in f) || !("value" in f))
		next
	row = f["name"] SUBSEP f["metric"]
	if (!(row in unit_of)) {
		unit_of[row] = f["unit"]
		g = group_of(f["name"])
		rows[g, ++nrows[g]] = row
		# Rows of one benchmark name, in order, for the per-benchmark tables.
		if (!((g, f["name"]) in seen_name)) {
			seen_name[g, f["name"]] = 1
			names[g, ++nnames[g]] = f["name"]
		}
		metrics_of[f["name"], ++nmetrics[f["name"]]] = f["metric"]
	}
	if (!(f["impl"] in seen_impl)) {
		seen_impl[f["impl"]] = 1
		impl_order[++nimpl_seen] = f["impl"]
	}
	k = row SUBSEP f["impl"] SUBSEP f["workers"]
	val[k, ++cnt[k]] = f["value"] + 0
	if (f["workers"] != "all" && f["workers"] + 0 > maxw_seen)
		maxw_seen = f["workers"] + 0
}

# ---------------------------------------------------------------------------------------------

function impl_list(    s, n, i, k) {
	# The configured implementations first (in run order), then any other seen (network).
	n = split(meta["impls"], s, " ")
	nimpls = 0
	for (i = 1; i <= n; i++) {
		impls[++nimpls] = s[i]
		listed[s[i]] = 1
	}
	for (i = 1; i <= nimpl_seen; i++)
		if (!(impl_order[i] in listed))
			impls[++nimpls] = impl_order[i]
}

function label(row,    p, name, metric) {
	split(row, p, SUBSEP)
	name = p[1]
	metric = p[2]
	return nmetrics[name] > 1 ? name " " metric : name
}

function headline(g,    i, j, row, unit, lib, line, r, n, base) {
	if (nrows[g] == 0)
		return
	printf "| %s | unit | libactor |", group_title(g)
	for (j = 1; j <= nimpls; j++)
		if (!is_base(g, impls[j]) && in_group(g, impls[j]))
			printf " %s (libactor advantage) |", impls[j]
	printf "\n|---|---|--:|"
	for (j = 1; j <= nimpls; j++)
		if (!is_base(g, impls[j]) && in_group(g, impls[j]))
			printf "--:|"
	printf "\n"
	for (i = 1; i <= nrows[g]; i++) {
		row = rows[g, i]
		unit = unit_of[row]
		base = base_of(row)
		lib = stats(row SUBSEP base SUBSEP "all") ? med : 0
		line = "| " label(row) (base == "libactor" ? "" : " (" substr(base, 10) ")") \
		    (has_peer(row) ? "" : " (libactor only)") " | " unit " | " \
		    (lib ? human(lib, unit) : "—") " |"
		for (j = 1; j <= nimpls; j++) {
			if (is_base(g, impls[j]) || !in_group(g, impls[j]))
				continue
			n = stats(row SUBSEP impls[j] SUBSEP "all")
			if (n == 0) {
				line = line " — |"
				continue
			}
			r = lib ? ratio(lib, med, unit) : ""
			line = line " " human(med, unit) " (" fmt_ratio(r) ") |"
		}
		print line
	}
	print ""
}

function bench_tables(g,    i, j, m, name, metric, row, unit, lib, n, r, only, base, impl) {
	for (i = 1; i <= nnames[g]; i++) {
		name = names[g, i]
		printf "### %s\n\n", name
		print "| metric | implementation | median | min–max | runs | libactor advantage (>1: libactor better) |"
		print "|---|---|--:|--:|--:|--:|"
		for (m = 1; m <= nmetrics[name]; m++) {
			metric = metrics_of[name, m]
			row = name SUBSEP metric
			unit = unit_of[row]
			base = base_of(row)
			lib = stats(row SUBSEP base SUBSEP "all") ? med : 0
			only = !has_peer(row)
			# The baseline first, then the others in run order.
			for (j = 0; j <= nimpls; j++) {
				impl = j == 0 ? base : impls[j]
				if (j > 0 && impl == base)
					continue
				n = stats(row SUBSEP impl SUBSEP "all")
				if (n == 0) {
					# (libactor itself, where the row has backends instead, is no gap.)
					if ((impl in active_impl) && !(impl == "libactor" && base != impl) && !only)
						printf "| %s (%s) | %s | — | — | 0 | not run (see notes) |\n", \
						    metric, unit, impl
					continue
				}
				r = (impl == base) ? "" : (lib ? ratio(lib, med, unit) : "")
				printf "| %s (%s) | %s | %s | %s–%s | %d | %s |\n", metric, unit, impl, \
				    human(med, unit), human(lo, unit), human(hi, unit), n, \
				    impl == base ? "(baseline)" : fmt_ratio(r)
			}
		}
		print ""
		if (only) {
			print "libactor only: no peer has a counterpart (see bench/peers/README.md)."
			print ""
		}
	}
}

# The bottom of a log-scale chart: the decade below the smallest value, with room to spare, so
# that a bar just above a decade (0.104×) does not vanish into the axis as gnuplot's own choice
# (0.1) would make it; never above 1, where the line at 1 is drawn.
function log_floor(x,    e) {
	e = log(x / 1.5) / log(10)
	e = int(e) > e ? int(e) - 1 : int(e)
	return e > 0 ? 1 : 10 ^ e
}

function chart(g, title,    i, j, row, unit, lib, n, dat, gp, col, ncols, r, any, rmin) {
	dat = work "/chart-" g ".dat"
	gp = work "/chart-" g ".gp"
	printf "" > dat
	any = 0
	for (i = 1; i <= nrows[g]; i++) {
		row = rows[g, i]
		unit = unit_of[row]
		lib = stats(row SUBSEP base_of(row) SUBSEP "all") ? med : 0
		if (!lib || !has_peer(row))
			continue
		printf "\"%s\"", label(row) >> dat
		for (j = 1; j <= nimpls; j++) {
			if (is_base(g, impls[j]) || !in_group(g, impls[j]))
				continue
			n = stats(row SUBSEP impls[j] SUBSEP "all")
			r = n ? ratio(lib, med, unit) : ""
			if (r != "" && (!any || r < rmin))
				rmin = r
			if (r != "")
				any = 1
			printf " %s", (r == "" ? "NaN" : sprintf("%.4g", r)) >> dat
		}
		printf "\n" >> dat
	}
	close(dat)
	if (!any) {
		printf "" > dat
		close(dat)
		return
	}
	ncols = 0
	print "set terminal svg size 960,540 dynamic noenhanced font 'sans,12' background '#ffffff'" > gp
	print "set output '" out "/compare-" g ".svg'" >> gp
	print "set title '" title "'" >> gp
	print "set style data histograms" >> gp
	print "set style histogram clustered gap 1" >> gp
	print "set style fill solid 0.85 border -1" >> gp
	print "set datafile missing 'NaN'" >> gp
	print "set logscale y" >> gp
	printf "set yrange [%g:*]\n", log_floor(rmin) >> gp
	print "set ylabel 'libactor advantage, x (log scale; >1: libactor better)'" >> gp
	print "set xtics rotate by -30 scale 0 nomirror" >> gp
	print "set grid ytics" >> gp
	print "set key outside top right" >> gp
	print "set bmargin 8" >> gp
	printf "plot" >> gp
	col = 1
	for (j = 1; j <= nimpls; j++) {
		if (is_base(g, impls[j]) || !in_group(g, impls[j]))
			continue
		col++
		printf "%s '%s' using %d%s title 'vs %s'", (col > 2 ? "," : ""), dat, col, \
		    (col == 2 ? ":xtic(1)" : ""), impls[j] >> gp
	}
	print ", 1 with lines lt -1 lw 1.5 notitle" >> gp
	close(gp)
	printf "![%s](compare-%s.svg)\n\n", g, g
}

function scaling_section(    i, j, w, row, unit, base, n, r, line, dat, gp, any, g, ncpu, col) {
	g = "messaging"
	ncpu = meta["ncpu"] + 0
	if (maxw_seen == 0)
		return
	print "## Scaling"
	print ""
	printf "Each messaging benchmark at 1 worker and at every worker count up to the %d CPUs, as a ratio\n", ncpu
	print "to its own 1-worker median (>1: faster with more workers). Workers are libactor's worker"
	print "threads (ACTOR_BENCH_WORKERS), Go's GOMAXPROCS, Erlang's schedulers (+S), CAF's scheduler"
	printf "threads and tokio's worker threads (TOKIO_WORKER_THREADS). The %d-worker column is the main\n", ncpu
	print "runs above (every runtime's default is one worker per CPU). `_1core` rows are fixed at one"
	print "worker and left out."
	print ""
	printf "| benchmark | implementation | 1 worker |"
	for (w = 2; w <= ncpu; w++)
		printf " %d workers |", w
	printf "\n|---|---|--:|"
	for (w = 2; w <= ncpu; w++)
		printf "--:|"
	printf "\n"
	dat = work "/chart-scaling.dat"
	printf "" > dat
	any = 0
	for (i = 1; i <= nrows[g]; i++) {
		row = rows[g, i]
		if (row ~ /_1core/)
			continue
		unit = unit_of[row]
		printf "\"%s\"", label(row) >> dat
		for (j = 1; j <= nimpls; j++) {
			if (!stats(row SUBSEP impls[j] SUBSEP 1)) {
				if (impls[j] in active_impl)
					printf " NaN" >> dat
				continue
			}
			base = med
			line = "| " label(row) " | " impls[j] " | " human(base, unit) " " unit " |"
			r = ""
			for (w = 2; w <= ncpu; w++) {
				n = stats(row SUBSEP impls[j] SUBSEP (w == ncpu ? "all" : w))
				r = n ? ratio(med, base, unit) : ""
				line = line " " fmt_ratio(r) " |"
			}
			print line
			if (impls[j] in active_impl) {
				printf " %s", (r == "" ? "NaN" : sprintf("%.4f", r)) >> dat
				if (r != "")
					any = 1
			}
		}
		printf "\n" >> dat
	}
	close(dat)
	print ""
	if (!any)
		return
	gp = work "/chart-scaling.gp"
	print "set terminal svg size 960,540 dynamic noenhanced font 'sans,12' background '#ffffff'" > gp
	print "set output '" out "/compare-scaling.svg'" >> gp
	printf "set title 'Scaling: %d workers against 1 (median of %s rounds)'\n", ncpu, meta["rounds"] >> gp
	print "set style data histograms" >> gp
	print "set style histogram clustered gap 1" >> gp
	print "set style fill solid 0.85 border -1" >> gp
	print "set datafile missing 'NaN'" >> gp
	print "set logscale y" >> gp
	printf "set ylabel 'speed at %d workers / speed at 1 (log scale)'\n", ncpu >> gp
	print "set xtics rotate by -30 scale 0 nomirror" >> gp
	print "set grid ytics" >> gp
	print "set key outside top right" >> gp
	print "set bmargin 8" >> gp
	printf "plot" >> gp
	col = 1
	for (j = 1; j <= nimpls; j++) {
		if (!(impls[j] in active_impl))
			continue
		col++
		printf "%s '%s' using %d%s title '%s'", (col > 2 ? "," : ""), dat, col, \
		    (col == 2 ? ":xtic(1)" : ""), impls[j] >> gp
	}
	print ", 1 with lines lt -1 lw 1.5 notitle" >> gp
	close(gp)
	print "![scaling](compare-scaling.svg)"
	print ""
}

# The busy-neighbour rows against their quiet rows: for each implementation, its noisy median
# as a share of its quiet median, oriented like every ratio here (rates: noisy / quiet; times:
# quiet / noisy), so that 1.00× is unaffected and 0.50× half as fast.
function noisy_vs_quiet(    g, i, j, row, q, unit, n, qmed, line) {
	g = "noisy"
	printf "| %s | unit |", group_title(g)
	for (j = 1; j <= nimpls; j++)
		if (in_group(g, impls[j]))
			printf " %s: noisy / quiet |", impls[j]
	printf "\n|---|---|"
	for (j = 1; j <= nimpls; j++)
		if (in_group(g, impls[j]))
			printf "--:|"
	printf "\n"
	for (i = 1; i <= nrows[g]; i++) {
		row = rows[g, i]
		q = quiet_row(row)
		unit = unit_of[row]
		line = "| " label(row) " | " unit " |"
		for (j = 1; j <= nimpls; j++) {
			if (!in_group(g, impls[j]))
				continue
			qmed = stats(q SUBSEP impls[j] SUBSEP "all") ? med : 0
			n = stats(row SUBSEP impls[j] SUBSEP "all")
			if (n == 0 || qmed == 0) {
				line = line " " (n ? human(med, unit) " (no quiet row)" : "—") " |"
				continue
			}
			line = line " " fmt_ratio(ratio(med, qmed, unit)) " (" human(med, unit) " / " \
			    human(qmed, unit) ") |"
		}
		print line
	}
	print ""
}

END {
	impl_list()
	n = split(meta["impls"], s, " ")
	for (i = 1; i <= n; i++)
		active_impl[s[i]] = 1

	print "# libactor benchmark comparison"
	print ""
	if (meta["quick"] == "1") {
		print "**QUICK RUN (BENCH_COMPARE_QUICK=1): reduced counts, for checking the suite only. These"
		print "figures are not comparable with the full ones.**"
		print ""
	}
	printf "Generated by `make bench-compare` (bench/compare.sh) on %s. Do not edit by hand.\n", meta["date"]
	print ""
	print "## Machine and method"
	print ""
	printf "- **Machine:** %s, %s CPUs, %s, %s.\n", meta["cpu"], meta["ncpu"], meta["kernel"], meta["os"]
	printf "- **Load average** (1, 5, 15 min) before and after: %s. The runs took about %s min.\n", meta["load"], meta["minutes"]
	if (split(meta["runloads"], rl, " ") == 3)
		printf "  The 1-minute load average as each run started: min %s, median %s, max %s (the suite's own\n  runs account for up to about %s: every runtime keeps each CPU busy).\n", rl[1], rl[2], rl[3], meta["ncpu"]
	printf "- **Toolchains:** "
	for (i = 1; i <= nversions; i++)
		printf "%s%s", (i > 1 ? "; " : ""), versions[i]
	print "."
	printf "- **Rounds:** %s. In each round every benchmark runs once per implementation, the\n", meta["rounds"]
	n = split(meta["impls"], s, " ")
	alt = ""
	for (i = 1; i <= n; i++)
		alt = alt s[i] ", "
	printf "  implementations alternating (%s%s...). A cell is the median of\n", alt, (n > 1 ? s[1] ", " : "")
	print "  the rounds, with their min–max."
	print "- **Ratios** (\"libactor advantage\") are oriented so that **>1 means libactor did better**:"
	print "  libactor's rate over the peer's for rates (1/s, MiB/s), the peer's time or size over"
	print "  libactor's for times (ms) and sizes (B)."
	print "- **Peers** (bench/peers/, described in bench/peers/README.md) do the same work and check the"
	print "  same result as the libactor program, with their runtime's defaults: Go with goroutines and"
	print "  channels, Erlang with processes (escripts, compiled), CAF 0.17 with event-based actors, tokio"
	print "  (Rust) with tasks and channels on its multi-thread runtime. Every runtime uses one worker"
	print "  thread per CPU unless a row says otherwise (`_1core`: one worker: libactor `workers = 1`, Go"
	print "  `GOMAXPROCS=1`, Erlang one scheduler online, CAF `scheduler.max-threads=1`, tokio"
	print "  `worker_threads(1)`)."
	missing = 0
	for (i = 1; i <= nnotes; i++)
		if (notes[i] ~ /^MISSING/) {
			if (!missing++)
				print "- **Missing peers** (skipped, never estimated):"
			sub(/^MISSING: /, "", notes[i])
			print "  - " notes[i]
		}
	if (!missing)
		print "- **Missing peers:** none; every implementation ran."
	print ""
	for (i = 1; i <= nnotes; i++)
		if (notes[i] !~ /^MISSING/ && notes[i] != "")
			print "> " notes[i]
	print ""

	print "## Reading the numbers"
	print ""
	print "- **Placement.** libactor's default placement (round-robin) puts actors spawned one after"
	print "  another on different workers; an actor runs on one worker at a time, and actors that are"
	print "  free to move then follow the actor that keeps waking them, or go to an idle worker (README,"
	print "  \"Placement and moving actors\"). The peers' schedulers run a woken goroutine, actor or task"
	print "  on the waker's thread first (Go, CAF, tokio) or compact a light load onto fewer schedulers"
	print "  (Erlang). The `_1core` rows and the scaling table show every runtime on one worker. A"
	print "  `_spread` row (libactor only) keeps a chain spread over the workers on purpose (`stay`)."
	print "- **Outside senders.** `fork_join_*` spawn and send from the program's main thread: a thread"
	print "  outside the worker pool for libactor, CAF and tokio (whose workers have every CPU; tokio runs"
	print "  the body of `main` outside its workers), a goroutine or a process on the scheduler for Go"
	print "  and Erlang."
	print "- **Noise.** A message that crosses cores costs a cache-line transfer between CPUs; on a"
	print "  virtual machine its latency depends on where the host runs the virtual CPUs and can change"
	print "  from one run to the next. The min–max columns show how much; trust a ratio only where the"
	print "  ranges do not overlap."
	print "- **Savina rows** (`chameneos`, `big`, `fork_join_*`) report execution time, Savina's metric."
	print ""
	print "## Headline"
	print ""
	print "Medians; in brackets the libactor advantage (>1: libactor better)."
	print ""
	headline("messaging")
	headline("spawning")
	headline("files")
	headline("network")
	headline("noisy")
	headline("other")

	print "## Messaging"
	print ""
	chart("messaging", "libactor vs peers: messaging (median of " meta["rounds"] " rounds; >1: libactor better)")
	bench_tables("messaging")
	print "## Spawning"
	print ""
	chart("spawning", "libactor vs peers: spawning (median of " meta["rounds"] " rounds; >1: libactor better)")
	bench_tables("spawning")
	print "## Blocking and files"
	print ""
	if (nrows["files"] == 0) {
		print "No blocking or file results in this run (`BENCH_COMPARE_FILES=0`, or none of"
		print "blocking_roundtrip, file_seq and file_rand was run)."
		print ""
	} else {
		print "- **blocking_roundtrip:** one actor (on one worker) keeps 1, then 64, jobs that do nothing"
		print "  in flight on libactor's default blocking pool (4 threads), submitting the next as each"
		print "  result comes back. libuv: `uv_queue_work` on its pool of 4 threads. Go: each job a"
		print "  goroutine of its own, its result back through a channel (bench/peers/go/"
		print "  blocking_roundtrip.go says why not a pool of 4). Go queues a new goroutine on the"
		print "  processor that started it, so a job that does nothing mostly runs and returns on the same"
		print "  thread, where libactor's and libuv's cross to a pool thread and back."
		print "- **file_seq:** a file written in 1 MiB calls, then read back, through the page cache, one"
		print "  call at a time. `c` is the libactor program's own plain `write()`/`read()` loop; Go uses"
		print "  `os.File` Write and Read."
		print "- **file_rand:** 4 KiB reads at random offsets (the same offsets everywhere) of a cached"
		print "  256 MiB file, 1 and 32 in flight. libuv: `uv_fs_read` on its pool of 4 threads; Go:"
		print "  `ReadAt` from 1 and from 32 goroutines."
		print "- **libuv** (bench/peers/libuv/, where configure found it) runs in every round after the"
		print "  implementations chosen, whichever they are."
		print "- **Backends:** the file programs run once per reactor backend in each run"
		print "  (`libactor-io_uring`, `libactor-epoll`, whose file operations go to the blocking pool)."
		print "  The `libactor` column of the headline is the backend libactor chooses by default"
		print "  (`auto`: io_uring where the kernel allows it), named after the row; the other backend"
		print "  is a column of its own, measured against it."
		printf "- **Counts:** %s.\n", meta["filescounts"]
		print "  The file programs report the median of 3 rounds of their own (alternating which"
		print "  implementation goes first), so their min–max is a range of medians."
		printf "- **Files** in %s, through the page cache: these rows measure the runtimes' paths to\n", meta["filedir"]
		print "  the kernel's file calls, not the disk."
		print ""
		chart("files", "libactor vs peers: blocking and files (median of " meta["rounds"] " rounds; >1: libactor better)")
		bench_tables("files")
	}
	print "## Network"
	print ""
	if (nrows["network"] == 0) {
		print "No network results in this run. The echo and chat benchmarks join this group when their"
		print "RESULT lines (names starting with `echo` or `chat`) are present: `BENCH_COMPARE_NETWORK=1`"
		print "runs bench/echo.sh each round, and `BENCH_COMPARE_NETWORK_RESULTS=\"file ...\"` reads lines"
		print "recorded elsewhere."
		print ""
	} else {
		if (meta["network"] == "1") {
			print "**Echo** (bench/echo.sh, " meta["echo"] "): 512-byte request/response round trips"
			print "over N loopback connections, driven by bench/echo_client (one thread, epoll; it checks"
			print "every byte) on the same CPUs as the server. `libactor` is bench/echo_server on its default"
			print "reactor (`auto`: io_uring where the kernel allows it) with one worker per CPU, not pinned"
			print "(`--no-pin`: no other server pins its threads, and the client shares the CPUs), an actor"
			print "per connection; `c-epoll` is a plain single-threaded C epoll loop (bench/echo_epoll.c), the"
			print "floor; the peers' servers are bench/peers/*/echo_server.*, with their runtime's defaults."
			print "Two metrics: `requests_per_s` is what client and server did together, and"
			print "`server_cpu_us_per_req` is the server's CPU time (user + system, every thread) per request"
			print "over the measured window, lower is better. A server that needs less CPU only gets a higher"
			print "rate if the client keeps up, and here the client shares the CPUs with the server; a server"
			print "that spins while waiting for the next request (libactor's workers poll for 50 µs before"
			print "parking) spends CPU on that at low load (`echo_c1`)."
			print ""
		}
		chart("network", "libactor vs peers: network (median; >1: libactor better)")
		bench_tables("network")
	}
	print "## Busy neighbour"
	print ""
	if (nrows["noisy"] == 0) {
		print "No busy-neighbour results in this run (`BENCH_COMPARE_NOISY=0`, or none of its benchmarks"
		print "was run). `make bench-noisy` runs the group on its own."
		print ""
	} else {
		print "bench/noisy.sh runs once per round, with every runtime's defaults: the messaging benchmarks"
		print "below beside a busy neighbour, a process that keeps one CPU busy. No runtime pins its threads"
		print "(libactor's default since adaptive placement), so the kernel may move any of them off the"
		print "neighbour's CPU; libactor's workers also stop spinning while their CPU is contended, and its"
		print "actors move between workers as the peers' schedulers move work. Rows are named `<benchmark>_noisy`; the"
		print "programs' other rows (`pingpong_1core`, `threadring_503_spread`) are not kept."
		print ""
		printf "- **Neighbour:** `taskset -c %s sh -c 'while :; do :; done'`, started before the group's\n", meta["noisycpu"]
		print "  runs and killed after them."
		print "- **Counts**, reduced, since beside the neighbour a libactor round trip can cost a time"
		print "  slice. A rate compares with the quiet row's whatever the count; fork_join_throughput"
		print "  reports a time, so it keeps the quiet count:"
		n = split(meta["noisycounts"], c, "; ")
		for (i = 1; i <= n; i++)
			print "  - " c[i]
		printf "- **Time bound:** a run is killed after %s s; its rows are then missing from that round\n", meta["noisytimeout"]
		print "  (see the notes above)."
		print ""
		chart("noisy", "libactor vs peers beside a busy neighbour (median of " meta["rounds"] " rounds; >1: libactor better)")
		print "### Against the quiet runs"
		print ""
		print "Each implementation's noisy median as a share of its own quiet median (the main runs"
		print "above), in brackets the two medians: rates noisy / quiet, times quiet / noisy, so 1.00× is"
		print "unaffected and 0.50× half as fast."
		print ""
		noisy_vs_quiet()
		bench_tables("noisy")
	}
	if (nrows["other"] > 0) {
		print "## Other"
		print ""
		bench_tables("other")
	}
	scaling_section()
}
