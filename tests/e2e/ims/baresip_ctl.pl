#!/usr/bin/env perl
# tests/e2e/ims/baresip_ctl.pl - drives a baresip through its ctrl_tcp module
# (netstring-framed JSON commands, responses and events) for t_baresip.sh.
#
#   baresip_ctl.pl PORT SECONDS STEP...
#     cmd:COMMAND ARGS   send {"command":COMMAND,"params":ARGS} and wait for
#                        its response (fails unless "ok":true)
#     wait:TYPE          wait for an event of that type (REGISTER_OK, ...)
#     fail:TYPE          from now on an event of that type fails the run
#     unfail:TYPE        ... until this step
# Every message received is printed, one per line.  Exit 0 when every step
# passed within SECONDS overall, 1 otherwise.
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(time);

my ($port, $secs, @steps) = @ARGV;
die "usage: $0 PORT SECONDS STEP...\n" unless $port && $secs;
my $deadline = time + $secs;
my $sock;
until ($sock = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Proto => 'tcp')) {
    die "baresip_ctl: no ctrl_tcp on $port\n" if time > $deadline;
    select(undef, undef, undef, 0.05);
}
my $sel = IO::Select->new($sock);
my $buf = '';
my (%failon, $token, @backlog); # events that came while waiting for a response

sub jstr { my $s = shift; $s =~ s/(["\\])/\\$1/g; return "\"$s\""; }

# the next complete message, or undef at the deadline
sub next_msg {
    while (1) {
        if ($buf =~ /^(\d+):/) {
            my ($len, $hl) = ($1, length($1) + 1);
            if (length($buf) >= $hl + $len + 1) {
                my $m = substr($buf, $hl, $len);
                $buf = substr($buf, $hl + $len + 1);
                print "$m\n";
                for my $t (keys %failon) {
                    die "baresip_ctl: FAIL: event $t\n" if $m =~ /"type"\s*:\s*"\Q$t\E"/;
                }
                return $m;
            }
        }
        my $left = $deadline - time;
        return undef if $left <= 0;
        next unless $sel->can_read($left);
        my $n = sysread($sock, $buf, 65536, length $buf);
        die "baresip_ctl: ctrl_tcp closed\n" unless $n;
    }
}

my $seq = 0;
for my $s (@steps) {
    my ($kind, $arg) = split /:/, $s, 2;
    if ($kind eq 'cmd') {
        my ($c, $p) = split / /, $arg, 2;
        $token = "t" . ++$seq;
        my $j = '{"command":' . jstr($c) . ',"params":' . jstr($p // '') . ',"token":"' . $token . '"}';
        print $sock length($j) . ":$j,";
        my $m;
        while (1) {
            $m = next_msg() // die "baresip_ctl: no response to '$arg'\n";
            last if $m =~ /"response"\s*:\s*true/ && $m =~ /"token"\s*:\s*"$token"/;
            push @backlog, $m;
        }
        die "baresip_ctl: '$arg' failed\n" unless $m =~ /"ok"\s*:\s*true/;
    } elsif ($kind eq 'wait') {
        my $m;
        do { $m = shift(@backlog) // next_msg() // die "baresip_ctl: no $arg event within ${secs}s\n" }
            until $m =~ /"event"\s*:\s*true/ && $m =~ /"type"\s*:\s*"\Q$arg\E"/;
    } elsif ($kind eq 'fail') {
        $failon{$arg} = 1;
    } elsif ($kind eq 'unfail') {
        delete $failon{$arg};
    } else {
        die "baresip_ctl: bad step '$s'\n";
    }
}
exit 0;
