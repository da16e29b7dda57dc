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
	na, nb := len(a.shingles), len(b.shingles)
	if na == 0 || nb == 0 {
		return na == nb
	}
	if float64(min(na, nb)) < threshold*float64(max(na, nb)) {
		return false
	}
	pa := na - int(math.Ceil(threshold*float64(na))) + 1
	pb := nb - int(math.Ceil(threshold*float64(nb))) + 1
	x, y := a.shingles[:pa], b.shingles[:pb]
	for i, j := 0, 0; i < len(x) && j < len(y); {
		switch {
		case x[i] == y[j]:
			return true
		case x[i] < y[j]:
			i++
		default:
			j++
		}
	}
	return false
}
