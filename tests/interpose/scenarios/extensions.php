<?php
// extensions.php — PHP with the extensions Debian's php-cli loads (dlopen'ed with RTLD_DEEPBIND):
// arrays and strings in the core, then calendar, ctype, iconv, tokenizer, posix, Phar's hashing,
// fileinfo, exif's tag names, sysvshm... Deterministic output.
$a = [];
for ($i = 0; $i < 50000; $i++) { $a["k$i"] = str_repeat(chr(65 + $i % 26), $i % 40); }
ksort($a);
echo count($a), " ", md5(serialize(array_slice($a, 0, 1000))), "\n";
echo json_encode(array_map(fn($x) => strlen($x), array_slice($a, 0, 8))), "\n";
echo cal_days_in_month(CAL_GREGORIAN, 2, 2024), " ", jdtogregorian(2460000), "\n";
echo ctype_digit("12345") ? "digits" : "no", " ", iconv("UTF-8", "ISO-8859-1//TRANSLIT", "caf\u{e9}") === "caf\xe9" ? "iconv ok" : "iconv bad", "\n";
echo count(token_get_all('<?php echo 1 + 2; $x = [1, 2, 3];')), " tokens\n";
echo posix_getpid() > 0 ? "posix ok" : "posix bad", "\n";
echo hash('sha256', str_repeat('persist', 1000)), "\n";
$f = new finfo(FILEINFO_MIME_TYPE);
echo $f->buffer("<?xml version=\"1.0\"?><a/>"), "\n";
echo exif_tagname(0x010f), "\n";
echo preg_replace_callback('/\d+/', fn($m) => $m[0] * 2, "a1 b22 c333"), "\n";
$pdo_drivers = PDO::getAvailableDrivers();
echo "pdo drivers: ", count($pdo_drivers), "\n";
$o = new ArrayObject(range(1, 1000));
echo array_sum($o->getArrayCopy()), "\n";
