package iostreams

// NeedEscapes is needEscapes, for the tests of package iostreams_test.
var NeedEscapes = (*IOStreams).needEscapes
