#!/usr/bin/env bash
# sha256_auth.sh - computes an RFC 7616 SHA-256 Digest response for sipp
# (Debian's sipp 3.6.1 only does MD5 and AKAv1-MD5), writes the Authorization
# line to OUT, then wakes the waiting sipp call with a datagram carrying its
# Call-ID (sipp's <exec> does not wait for the command).
#
#   sha256_auth.sh OUT SIPP_PORT CALL_ID USER REALM PASSWORD URI NONCE
# Test data only: the password comes from the harness.
set -eu
out=$1 port=$2 callid=$3 user=$4 realm=$5 pw=$6 uri=$7 nonce=$8
h() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
ha1=$(h "$user:$realm:$pw")
ha2=$(h "REGISTER:$uri")
cnonce=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
nc=00000001
resp=$(h "$ha1:$nonce:$nc:$cnonce:auth:$ha2")
printf 'Authorization: Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=SHA-256, qop=auth, nc=%s, cnonce="%s"' \
    "$user" "$realm" "$nonce" "$uri" "$resp" "$nc" "$cnonce" >"$out.tmp"
mv "$out.tmp" "$out"
msg=$(printf 'NOTIFY sip:ue@127.0.0.1:%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKsha%s\r\nMax-Forwards: 70\r\nFrom: <sip:helper@127.0.0.1>;tag=h1\r\nTo: <sip:ue@127.0.0.1>\r\nCall-ID: %s\r\nCSeq: 1 NOTIFY\r\nEvent: auth-ready\r\nContent-Length: 0\r\n\r\n' \
    "$port" "$cnonce" "$callid")
# one datagram (bash's /dev/udp would send one per line): perl-base is essential
perl -MIO::Socket::INET -e '
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$ARGV[0]", Proto => "udp") or die;
    $s->send($ARGV[1]) or die;' "$port" "$msg"
