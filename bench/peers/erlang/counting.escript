#!/usr/bin/env escript
%% counting.escript: the Erlang peer of bench/counting.c: message throughput into one process,
%% from one sender and from four.
%%
%% Usage: escript counting.escript [messages] [window]   (defaults 10,000,000 and 65536; window >= 2)
%%
%% Sender processes send their share of `messages` to one counting process, which checks that
%% every message arrives exactly once and in order per sender and reports when the total is
%% reached. A message is the sender's index in the top byte and its sequence number below (a
%% small integer, as in counting.c). Mailboxes are unbounded, so the same credit protocol as
%% counting.c bounds them: a sender may have `window` messages unacknowledged, and the counter
%% grants window/2 more after each window/2 messages from a sender. Senders need no CONTINUE:
%% the VM preempts them.
-mode(compile).
-include("bench.hrl").

-define(SEQ_BITS, 56).
-define(SEQ_MASK, ((1 bsl ?SEQ_BITS) - 1)).

main(Args) ->
    Messages = arg(Args, 1, 10000000, ?SEQ_MASK),
    Window = arg(Args, 2, 65536, 1 bsl 32),
    Messages >= 4 orelse fail("counting: need at least 4 messages", []),
    Window >= 2 orelse fail("counting: window must be at least 2", []),
    count("counting_1to1", 1, Messages, Window),
    count("counting_4to1", 4, Messages, Window).

count(Name, NSenders, Messages, Window) ->
    Main = self(),
    Grant = Window div 2,
    Counter = spawn(fun() ->
                            process_flag(message_queue_data, off_heap),
                            receive {senders, S} -> ok end,
                            counter(S, erlang:make_tuple(NSenders, 0), 0, Messages, Grant, Main)
                    end),
    Senders = [spawn(fun() ->
                             receive start -> ok end,
                             Share = Messages div NSenders
                                 + (if I < Messages rem NSenders -> 1; true -> 0 end),
                             sender(Counter, I bsl ?SEQ_BITS, Share, 2 * Grant, Grant)
                     end)
               || I <- lists:seq(0, NSenders - 1)],
    Counter ! {senders, list_to_tuple(Senders)},
    T0 = now_ns(),
    [S ! start || S <- Senders],
    receive
        {done, T1} -> result(Name, "msgs_per_s", Messages / secs(T0, T1), "1/s");
        {failed, Idx, Seq, Want} ->
            fail("counting: sender ~b: got message ~b, expected ~b", [Idx, Seq, Want])
    end.

sender(_Counter, _Base, 0, _Credit, _Grant) -> ok;
sender(Counter, Base, Left, 0, Grant) ->
    receive credit -> sender(Counter, Base, Left, Grant, Grant) end;
sender(Counter, Base, Left, Credit, Grant) ->
    Counter ! Base,
    sender(Counter, Base + 1, Left - 1, Credit - 1, Grant).

counter(_Senders, _Next, Expected, Expected, _Grant, Main) ->
    Main ! {done, now_ns()};
counter(Senders, Next, Count, Expected, Grant, Main) ->
    receive
        V ->
            Idx = V bsr ?SEQ_BITS,
            Seq = V band ?SEQ_MASK,
            Want = if Idx < tuple_size(Next) -> element(Idx + 1, Next); true -> -1 end,
            if Seq =/= Want -> Main ! {failed, Idx, Seq, Want};
               true ->
                    (Seq + 1) rem Grant =:= 0 andalso (element(Idx + 1, Senders) ! credit),
                    counter(Senders, setelement(Idx + 1, Next, Seq + 1), Count + 1, Expected,
                            Grant, Main)
            end
    end.
