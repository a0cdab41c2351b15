package policy

import "github.com/tidwall/gjson"

// member returns the value of an object's field, or a Result that does not
// exist.
//
// # Notes
//
// It stands in for gjson's Result.Get, whose path syntax includes
// modifiers ("@pretty" …): calling Get links them, and through
// github.com/tidwall/pretty encoding/json, fmt and reflect, about 310 KB of
// the TinyGo module. TestModule_Dependencies (filter) fails when they are
// linked again.
func member(v gjson.Result, name string) gjson.Result {
	var found gjson.Result
	v.ForEach(func(key, value gjson.Result) bool {
		if key.Str == name {
			found = value
			return false
		}
		return true
	})
	return found
}
