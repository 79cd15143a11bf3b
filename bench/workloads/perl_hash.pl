# perl_hash.pl — a perl workload of hash churn: build a hash of small records, count words,
# delete and re-insert, sort. Deterministic; prints a checksum. Scale with the first argument.
use strict;
use warnings;

my $scale = $ARGV[0] // 1;
my $n = int(300_000 * $scale);
my %h;
my $seed = 1;
sub rnd { $seed = ($seed * 1103515245 + 12345) % 2147483648; return $seed; }
for my $i (1 .. $n) {
    my $k = sprintf("key%07d", rnd() % (4 * $n));
    $h{$k} = [ $i, "v" x (1 + $i % 40), { a => $i, b => rnd() % 100 } ];
}
my %count;
for my $k (keys %h) { $count{ $h{$k}[2]{b} }++; }
my $i = 0;
for my $k (sort keys %h) { delete $h{$k} if ++$i % 3 == 0; }
for my $j (1 .. $n / 2) { $h{"new$j"} = [ $j, "w" x ($j % 60) ]; }
my $sum = 0;
$sum += length($_) for sort { $a cmp $b } keys %h;
print scalar(keys %h), " ", $sum, " ", scalar(keys %count), "\n";
