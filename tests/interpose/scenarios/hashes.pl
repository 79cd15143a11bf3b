# hashes.pl — a Perl workload (hashes, regexes, sort) with deterministic output.
use strict;
use warnings;

my $seed = 42;
sub rnd { $seed = ($seed * 1103515245 + 12345) % 2147483648; return $seed; }

my %h;
my @words;
for my $i (1 .. 60000) {
  my $w = join '', map { chr(97 + rnd() % 26) } 1 .. (3 + rnd() % 9);
  push @words, $w;
  $h{$w}{count}++;
  push @{ $h{$w}{at} }, $i;
}
delete $h{$_} for grep { /^[aeiou]/ } keys %h;

my $vowels = 0;
my %shapes;
for my $w (@words) {
  (my $s = $w) =~ s/[aeiou]/V/g;
  $s =~ s/[^V]/c/g;
  $shapes{$s}++;
  $vowels += () = $w =~ /[aeiou]/g;
}
my @sorted = sort { $h{$b}{count} <=> $h{$a}{count} or $a cmp $b } keys %h;
my $joined = join ',', @sorted;
my $sum = 0;
$sum = ($sum * 31 + ord($_)) % 1000000007 for split //, $joined;
my @top = @sorted[0 .. 4];
my @shapes = (sort { $shapes{$b} <=> $shapes{$a} or $a cmp $b } keys %shapes)[0 .. 4];
my $text = join ' ', @words[0 .. 9999];
my $matches = () = $text =~ /\b(\w)\w*\1\b/g;

print "keys ", scalar(keys %h), "\n";
print "vowels $vowels\n";
print "top @top\n";
print "shapes @shapes\n";
print "checksum $sum\n";
print "same-letter words $matches\n";
