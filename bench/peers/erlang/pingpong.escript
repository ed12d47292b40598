#!/usr/bin/env escript
%% pingpong.escript: the Erlang peer of bench/pingpong.c: round trips between two processes.
%%
%% Usage: escript pingpong.escript [roundtrips]   (default 2,000,000)
%%
%% A ping process serves a counter to a pong process, which returns it one higher; ping checks
%% every return. `pingpong` runs with the VM's default schedulers, which decide where the two
%% processes run; `pingpong_1core` runs the same game with one scheduler online
%% (erlang:system_flag(schedulers_online, 1): what erl +S N:1 starts with).
-mode(compile).
-include("bench.hrl").

main(Args) ->
    N = arg(Args, 1, 2000000, 1 bsl 62),
    play("pingpong", 0, N),
    play("pingpong_1core", 1, N).

play(Name, Online, N) ->
    Prev = erlang:system_info(schedulers_online),
    Online > 0 andalso erlang:system_flag(schedulers_online, Online),
    Main = self(),
    Pong = spawn(fun pong/0),
    spawn(fun() ->
                  T0 = now_ns(),
                  ok = ping(Name, Pong, 0, N),
                  Main ! {done, secs(T0, now_ns())}
          end),
    receive {done, Secs} -> result(Name, "roundtrips_per_s", N / Secs, "1/s") end,
    Pong ! stop,
    erlang:system_flag(schedulers_online, Prev).

ping(_Name, _Pong, N, N) -> ok;
ping(Name, Pong, Returned, N) ->
    Pong ! {ball, self(), Returned},
    receive
        {ball, M} when M =:= Returned + 1 -> ping(Name, Pong, M, N);
        {ball, M} -> fail("~s: ball ~b came back as ~b", [Name, Returned + 1, M])
    end.

pong() ->
    receive
        {ball, From, N} -> From ! {ball, N + 1}, pong();
        stop -> ok
    end.
