module libpvm.example/pvmgo

go 1.19
