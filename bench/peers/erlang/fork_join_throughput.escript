#!/usr/bin/env escript
%% fork_join_throughput.escript: the Erlang peer of bench/fork_join_throughput.c: one process
%% feeding many.
%%
%% Usage: escript fork_join_throughput.escript [messages] [processes]   (defaults 10,000 and 60)
%%
%% The main process sends `messages` rounds of one message to each of `processes` processes.
%% Each message costs its receiver Savina's small computation (the square of a sine); a process
%% stops after its last message and reports how many it got and how many computations were not
%% positive. Time runs from the first spawn until the last report.
-mode(compile).
-include("bench.hrl").

-define(THETA, 37.2). % Savina's argument to performComputation

main(Args) ->
    Messages = arg(Args, 1, 10000, 1 bsl 40),
    N = arg(Args, 2, 60, 1000000),
    Main = self(),
    Theta = ?THETA,
    T0 = now_ns(),
    Workers = [spawn(fun() -> worker(Main, Theta, Messages, 0, 0) end) || _ <- lists:seq(1, N)],
    send_rounds(Messages, Workers),
    Reports = [receive {done, W, P, B} -> {P, B} end || W <- Workers],
    T1 = now_ns(),
    [fail("fork_join_throughput: a process processed ~b of ~b messages, ~b bad results",
          [P, Messages, B]) || {P, B} <- Reports, P =/= Messages orelse B =/= 0],
    result("fork_join_throughput", "time", ms(T0, T1), "ms").

send_rounds(0, _Workers) -> ok;
send_rounds(M, Workers) ->
    [W ! work || W <- Workers],
    send_rounds(M - 1, Workers).

worker(Main, _Theta, Expected, Expected, Bad) ->
    Main ! {done, self(), Expected, Bad};
worker(Main, Theta, Expected, Processed, Bad) ->
    receive
        work ->
            S = math:sin(Theta),
            B = if S * S =< 0 -> Bad + 1; true -> Bad end,
            worker(Main, Theta, Expected, Processed + 1, B)
    end.
