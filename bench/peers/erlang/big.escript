#!/usr/bin/env escript
%% big.escript: the Erlang peer of bench/big.c: many processes each pinging random others, one
%% at a time.
%%
%% Usage: escript big.escript [pings] [processes]   (defaults 20,000 and 120)
%%
%% The same protocol as big.c: each process learns every process (itself included), pings one
%% picked by Savina's pseudo-random generator, waits for its pong (checking who sent it),
%% `pings` times, then tells the sink done, answering every ping meanwhile. Once all are done
%% the sink sends exit to each, and each replies with a tally of pings answered and wrong pongs.
%% The answered pings must add up to processes * pings with no wrong pong. Time runs from the
%% first spawn to the sink's last tally.
-mode(compile).
-include("bench.hrl").

main(Args) ->
    Pings = arg(Args, 1, 20000, 1 bsl 40),
    N = arg(Args, 2, 120, 1000000),
    Main = self(),
    T0 = now_ns(),
    Sink = spawn(fun() -> receive {actors, All} -> sink(All, N, 0, Main) end end),
    Actors = list_to_tuple([spawn(fun() -> receive {actors, All} -> ok end,
                                           big(Id, All, Sink, Pings, Id, -1, 0, 0)
                                  end)
                            || Id <- lists:seq(0, N - 1)]),
    [P ! {actors, Actors} || P <- [Sink | tuple_to_list(Actors)]],
    [P ! {pong, -1} || P <- tuple_to_list(Actors)],
    receive
        {done, Tallied, Answered, Wrong, T1} ->
            Tallied =:= N andalso Answered =:= N * Pings andalso Wrong =:= 0 orelse
                fail("big: ~b of ~b tallies, ~b pings answered (expected ~b), "
                     "~b pongs from the wrong actor", [Tallied, N, Answered, N * Pings, Wrong]),
            result("big", "time", ms(T0, T1), "ms")
    end.

%% Waits for every process to be done, then tells them all to exit and sums their tallies.
sink(All, N, Done, Main) when Done < N ->
    receive done -> sink(All, N, Done + 1, Main) end;
sink(All, N, _Done, Main) ->
    [P ! exit || P <- tuple_to_list(All)],
    tally(N, 0, 0, 0, Main).

tally(N, N, Answered, Wrong, Main) ->
    Main ! {done, N, Answered, Wrong, now_ns()};
tally(N, Tallied, Answered, Wrong, Main) ->
    receive {tally, A, W} -> tally(N, Tallied + 1, Answered + A, Wrong + W, Main) end.

big(Id, All, Sink, Left, Rand, Expected, Answered, Wrong) ->
    receive
        {ping, From} ->
            element(From + 1, All) ! {pong, Id},
            big(Id, All, Sink, Left, Rand, Expected, Answered + 1, Wrong);
        {pong, From} ->
            W = if From =:= Expected -> Wrong; true -> Wrong + 1 end,
            case Left of
                0 ->
                    Sink ! done,
                    big(Id, All, Sink, 0, Rand, Expected, Answered, W);
                _ ->
                    R = (Rand * 1309 + 13849) band 65535, % Savina's PseudoRandom
                    Target = R rem tuple_size(All),
                    element(Target + 1, All) ! {ping, Id},
                    big(Id, All, Sink, Left - 1, R, Target, Answered, W)
            end;
        exit ->
            Sink ! {tally, Answered, Wrong}
    end.
