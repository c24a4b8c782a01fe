module github.com/hdt3213/rdb

go 1.18
