#!/usr/bin/env escript
%%! +P 4000000
%% skynet.escript: the Erlang peer of bench/skynet.c: a tree of 1,111,111 processes summing their
%% numbers back up to the root.
%%
%% Usage: escript skynet.escript [leaves]   (default 1,000,000; a power of ten, at least 10)
%%
%% The skynet benchmark: each process spawns 10 children, each with its part of the number
%% range, and sends its parent the sum of their replies; a leaf sends its number. The root's
%% total must be leaves*(leaves-1)/2. +P raises the process limit above the 1,111,111 that can be
%% alive at once. Each run is timed from the root's spawn to its total; first_run_time is the
%% first of three runs, best_time the fastest.
-mode(compile).
-include("bench.hrl").

-define(FANOUT, 10).
-define(RUNS, 3).

main(Args) ->
    Leaves = arg(Args, 1, 1000000, 100000000),
    is_power(Leaves) orelse begin
        io:format(standard_error, "leaves must be a power of ~b, at least ~b~n",
                  [?FANOUT, ?FANOUT]),
        halt(2)
    end,
    Name = case Leaves of 1000000 -> "skynet_1m"; _ -> "skynet_" ++ integer_to_list(Leaves) end,
    Times = [run_once(Leaves) || _ <- lists:seq(1, ?RUNS)],
    result(Name, "first_run_time", hd(Times), "ms"),
    result(Name, "best_time", lists:min(Times), "ms").

is_power(N) when N < ?FANOUT -> false;
is_power(?FANOUT) -> true;
is_power(N) -> N rem ?FANOUT =:= 0 andalso is_power(N div ?FANOUT).

run_once(Leaves) ->
    Self = self(),
    T0 = now_ns(),
    spawn(fun() -> skynet(Self, 0, Leaves) end),
    receive {sum, Sum} -> ok end,
    T = ms(T0, now_ns()),
    Want = Leaves * (Leaves - 1) div 2,
    Sum =:= Want orelse fail("skynet: sum ~b, expected ~b", [Sum, Want]),
    io:format(standard_error, "skynet: sum ~b in ~.1f ms~n", [Sum, T]),
    T.

skynet(Parent, Num, 1) ->
    Parent ! {sum, Num};
skynet(Parent, Num, Size) ->
    Self = self(),
    Child = Size div ?FANOUT,
    [spawn(fun() -> skynet(Self, Num + I * Child, Child) end) || I <- lists:seq(0, ?FANOUT - 1)],
    Parent ! {sum, collect(?FANOUT, 0)}.

collect(0, Sum) -> Sum;
collect(N, Sum) -> receive {sum, S} -> collect(N - 1, Sum + S) end.
