#!/usr/bin/env escript
%% threadring.escript: the Erlang peer of bench/threadring.c: a token passed around a ring of
%% processes.
%%
%% Usage: escript threadring.escript [hops] [processes]   (defaults 10,000,000 and 503)
%%
%% The benchmarks-game shape: process 1 gets the token holding `hops`; each passes it on to the
%% next, one lower, and the one that receives 0 holds it at the end, which must be process
%% (hops mod processes) + 1.
-mode(compile).
-include("bench.hrl").

main(Args) ->
    Hops = arg(Args, 1, 10000000, 1 bsl 62),
    N = arg(Args, 2, 503, 10000000),
    Main = self(),
    Pids = [spawn(fun() -> receive {next, Next} -> node(Id, Next, Main) end end)
            || Id <- lists:seq(1, N)],
    [P ! {next, Next} || {P, Next} <- lists:zip(Pids, tl(Pids) ++ [hd(Pids)])],
    T0 = now_ns(),
    hd(Pids) ! Hops,
    receive
        {holder, Id, T1} ->
            Want = Hops rem N + 1,
            Id =:= Want orelse fail("threadring: token ended at process ~b, expected ~b",
                                    [Id, Want]),
            result("threadring_" ++ integer_to_list(N), "hops_per_s", Hops / secs(T0, T1), "1/s")
    end.

node(Id, Next, Main) ->
    receive
        0 -> Main ! {holder, Id, now_ns()};
        V -> Next ! V - 1, node(Id, Next, Main)
    end.
