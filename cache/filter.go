package cache

import "math"

// mayReach reports whether a and b can be at least threshold alike, from
// their sizes and the starts of their sorted shingles alone: the prefix
// filter of set-similarity joins. When the Jaccard index of two sets is
// at least t, they share at least ⌈t·|x|⌉ of x's elements, so with both
// sorted in one order the first |x| − ⌈t·|x|⌉ + 1 elements of each must
// meet. A near lookup compares a request with up to a hundred answers;
// this turns most of them away in a few comparisons.
func mayReach(a, b *Text, threshold float64) bool {
	ok, _ := mayReachPrefix(a, len(b.shingles), b.shingles, threshold)
	return ok
}

// mayReachPrefix is mayReach for a b known only by its number of
// shingles, nb, and the first of them, bPrefix. decided is false when
// bPrefix is too short to tell: then b must be read whole.
func mayReachPrefix(a *Text, nb int, bPrefix []uint64, threshold float64) (may, decided bool) {
	na := len(a.shingles)
	if na == 0 || nb == 0 {
		return na == nb, true
	}
	if float64(min(na, nb)) < threshold*float64(max(na, nb)) {
		return false, true
	}
	pa := na - int(math.Ceil(threshold*float64(na))) + 1
	pb := nb - int(math.Ceil(threshold*float64(nb))) + 1
	if pb > len(bPrefix) {
		return true, false
	}
	x, y := a.shingles[:pa], bPrefix[:pb]
	for i, j := 0, 0; i < len(x) && j < len(y); {
		switch {
		case x[i] == y[j]:
			return true, true
		case x[i] < y[j]:
			i++
		default:
			j++
		}
	}
	return false, true
}
