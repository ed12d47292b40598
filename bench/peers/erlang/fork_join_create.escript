#!/usr/bin/env escript
%% fork_join_create.escript: the Erlang peer of bench/fork_join_create.c: many short-lived
%% processes, one message each.
%%
%% Usage: escript fork_join_create.escript [processes]   (default 40,000)
%%
%% The main process spawns `processes` processes one after another and sends each one message.
%% A process does Savina's small computation (the square of a sine), counts itself done on a
%% shared atomic counter and ends; the one that brings the count to `processes` tells the main
%% process. Every computation must be positive. Time runs from the first spawn until then.
-mode(compile).
-include("bench.hrl").

-define(THETA, 37.2). % Savina's argument to performComputation

main(Args) ->
    N = arg(Args, 1, 40000, 100000000),
    Main = self(),
    Theta = ?THETA,
    Counts = atomics:new(2, [{signed, false}]), % 1: done, 2: bad results
    T0 = now_ns(),
    spawn_all(N, fun() -> worker(Main, Theta, Counts, N) end),
    receive all_done -> ok end,
    T1 = now_ns(),
    Bad = atomics:get(Counts, 2),
    Bad =:= 0 orelse fail("fork_join_create: ~b bad results", [Bad]),
    result("fork_join_create", "time", ms(T0, T1), "ms").

spawn_all(0, _Fun) -> ok;
spawn_all(N, Fun) ->
    spawn(Fun) ! work,
    spawn_all(N - 1, Fun).

worker(Main, Theta, Counts, N) ->
    receive
        work ->
            S = math:sin(Theta),
            S * S =< 0 andalso atomics:add(Counts, 2, 1),
            atomics:add_get(Counts, 1, 1) =:= N andalso (Main ! all_done)
    end.
