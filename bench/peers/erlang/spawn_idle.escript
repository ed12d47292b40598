#!/usr/bin/env escript
%%! +P 4000000
%% spawn_idle.escript: the Erlang peer of bench/spawn_idle.c: what an idle process costs, in
%% memory and in spawn time.
%%
%% Usage: escript spawn_idle.escript [processes]   (default 1,000,000)
%%
%% The main process spawns `processes` processes, each waiting in receive and never sent
%% anything, then reads the growth of the resident set size (bytes_per_actor: the process with
%% its initial heap, plus the 16-byte list cell that keeps its pid). spawns_per_s times the
%% spawns. +P raises the process limit above the default 262,144.
-mode(compile).
-include("bench.hrl").

main(Args) ->
    N = arg(Args, 1, 1000000, 100000000),
    Rss0 = rss_bytes(),
    T0 = now_ns(),
    Pids = spawn_idle(N, []),
    T1 = now_ns(),
    Rss1 = rss_bytes(),
    Alive = erlang:system_info(process_count),
    Alive >= N orelse fail("spawn_idle: ~b processes alive, expected ~b", [Alive, N]),
    T2 = now_ns(),
    [P ! stop || P <- Pids],
    io:format(standard_error, "spawn_idle: RSS ~.1f MB -> ~.1f MB; stop ~.1f ms~n",
              [Rss0 / 1.0e6, Rss1 / 1.0e6, ms(T2, now_ns())]),
    Name = case N of 1000000 -> "spawn_idle_1m"; _ -> "spawn_idle_" ++ integer_to_list(N) end,
    result(Name, "bytes_per_actor", max(Rss1 - Rss0, 0) / N, "B"),
    result(Name, "spawns_per_s", N / secs(T0, T1), "1/s").

spawn_idle(0, Acc) -> Acc;
spawn_idle(N, Acc) -> spawn_idle(N - 1, [spawn(fun idle/0) | Acc]).

idle() -> receive stop -> ok end.
