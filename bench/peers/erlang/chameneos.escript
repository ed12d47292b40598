#!/usr/bin/env escript
%% chameneos.escript: the Erlang peer of bench/chameneos.c: creatures meet in pairs through one
%% broker.
%%
%% Usage: escript chameneos.escript [meetings] [creatures]   (defaults 200,000 and 100)
%%
%% The same protocol as chameneos.c, one process per creature and one for the mall: {meet,
%% Colour, Pid} to the mall, which holds the first and forwards the second, as it is, to the
%% holder; the holder takes the complement colour and sends {change, Colour} to the other; after
%% `meetings` meetings the mall answers every meet with {exit, Mall} and each creature replies
%% with its meeting count. The sum must be twice `meetings`. Time runs from the first spawn to
%% the mall's receipt of the last count.
-mode(compile).
-include("bench.hrl").

main(Args) ->
    Meetings = arg(Args, 1, 200000, 1 bsl 60),
    Creatures = arg(Args, 2, 100, 1000000),
    Creatures >= 2 orelse fail("chameneos: need at least 2 creatures", []),
    Main = self(),
    T0 = now_ns(),
    Mall = spawn(fun() -> mall(Meetings, none, Creatures, 0, 0, Main) end),
    [spawn(fun() -> chameneo(Mall, I rem 3, 0) end) || I <- lists:seq(0, Creatures - 1)],
    receive
        {done, Faded, Sum, T1} ->
            Faded =:= Creatures andalso Sum =:= 2 * Meetings orelse
                fail("chameneos: ~b of ~b creatures reported ~b meetings, expected ~b",
                     [Faded, Creatures, Sum, 2 * Meetings]),
            result("chameneos", "time", ms(T0, T1), "ms")
    end.

complement(C, C) -> C;
complement(A, B) -> 3 - A - B.

mall(Left, Waiting, Creatures, Faded, Sum, Main) ->
    receive
        {count, N} when Faded + 1 =:= Creatures ->
            Main ! {done, Faded + 1, Sum + N, now_ns()};
        {count, N} ->
            mall(Left, Waiting, Creatures, Faded + 1, Sum + N, Main);
        {meet, _Colour, Who} when Left =:= 0 ->
            Who ! {exit, self()},
            mall(Left, Waiting, Creatures, Faded, Sum, Main);
        {meet, _Colour, Who} when Waiting =:= none ->
            mall(Left, Who, Creatures, Faded, Sum, Main);
        {meet, _Colour, _Who} = Meet ->
            Waiting ! Meet,
            mall(Left - 1, none, Creatures, Faded, Sum, Main)
    end.

chameneo(Mall, Colour, Meetings) ->
    Mall ! {meet, Colour, self()},
    receive
        {meet, Other, Who} -> % the mall paired us with Who
            New = complement(Colour, Other),
            Who ! {change, New},
            chameneo(Mall, New, Meetings + 1);
        {change, New} ->
            chameneo(Mall, New, Meetings + 1);
        {exit, From} ->
            From ! {count, Meetings}
    end.
