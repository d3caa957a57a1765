// decisionflow-probe FILE: reads an HDF5 file (a D4RL file, or a Minari dataset) completely,
// as `FileProbe` asks a child process to, so that a file that crashes libhdf5 crashes this
// process and not the program that asked. It exits 0 once it has read the file, whatever the
// file holds, and 64 when it is not given exactly one path.
import Foundation
import RLData

guard CommandLine.arguments.count == 2 else {
    FileHandle.standardError.write(Data("usage: decisionflow-probe FILE\n".utf8))
    exit(64)
}
FileProbe.readEverything(CommandLine.arguments[1])
