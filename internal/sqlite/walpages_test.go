package sqlite_test

import (
	"database/sql"
	"encoding/binary"
	"fmt"
	"os"
	"sort"
	"testing"
)

// walPages prints, for the WAL at path, how many frames each b-tree's
// pages took, per commit.
func walPages(b *testing.B, path string) {
	wal, err := os.ReadFile(path + "-wal")
	if err != nil {
		b.Fatal(err)
	}
	const page = 4096
	frames := map[uint32]int{}
	commits := 0
	for off := 32; off+24+page <= len(wal); off += 24 + page {
		pg := binary.BigEndian.Uint32(wal[off:])
		frames[pg]++
		if binary.BigEndian.Uint32(wal[off+4:]) != 0 {
			commits++
		}
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name, pageno, pagetype FROM dbstat`)
	if err != nil {
		b.Fatal(err)
	}
	names := map[uint32]string{}
	for rows.Next() {
		var n, t string
		var p uint32
		rows.Scan(&n, &p, &t)
		names[p] = n + " " + t
	}
	by := map[string]int{}
	for pg, n := range frames {
		name := names[pg]
		if name == "" {
			name = fmt.Sprint("page ", pg)
		}
		if pg == 1 {
			name = "page 1"
		}
		by[name] += n
	}
	var keys []string
	for k := range by {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return by[keys[i]] > by[keys[j]] })
	for _, k := range keys {
		fmt.Printf("%-50s %8.2f per commit\n", k, float64(by[k])/float64(commits))
	}
	fmt.Println("commits", commits)
}
